"""PyTorch eager: eval mode, ``torch.inference_mode``, and no hooks.

Forward hooks, pre-hooks and ``torch.nn.utils.prune`` masks run Python on every call; they are
why masked pruning measures slower, not faster. A model carrying them is refused unless the
request allows hooks, and then the record names them.

On the GPU: fp16 (model and floating inputs in half precision), CUDA-event device time on the
current stream, the caching allocator's peak as device memory, and with ``include_copies`` each
inference copies its inputs in from pinned host memory and its outputs back.

``layer_profile`` (``--profile-layers``) times each module's own operators with ``torch.profiler``
after the timed loop, through hooks that exist only while it profiles
(``edgebench.board.runners.eager_profile``).
"""

from __future__ import annotations

from edgebench.board.runners.base import Runner, RunnerError, RunnerUnavailable

# Target device names -> torch devices. DLA cores run TensorRT engines only.
_TORCH_DEVICES = {"cpu": "cpu", "gpu": "cuda"}


class EagerRunner(Runner):
    name = "eager"
    requires = "torch"
    model_kind = "torch"
    option_types = {"interop_threads": int}

    def import_backend(self):
        super().import_backend()
        if self.request["model"].get("format") in ("torchvision", "edgebench"):
            import torchvision  # noqa: F401  (the model's own code, not its build)

    def load(self):
        import torch

        from edgebench.board.torch_models import ModelBuildError, build_module

        if self.device not in _TORCH_DEVICES:
            raise RunnerUnavailable("PyTorch eager cannot run on %s (DLA cores run TensorRT engines only)"
                                    % self.device)
        self.torch_device = _TORCH_DEVICES[self.device]
        self.on_gpu = self.torch_device == "cuda"
        self.require_precision(("fp32", "fp16") if self.on_gpu else ("fp32",), " on %s" % self.device)
        if self.on_gpu and not torch.cuda.is_available():
            raise RunnerUnavailable("PyTorch here has no CUDA device")
        if self.on_gpu:
            torch.cuda.reset_peak_memory_stats()
        if self.threads:
            torch.set_num_threads(self.threads)
        if "interop_threads" in self.options:
            torch.set_num_interop_threads(self.options["interop_threads"])
        try:
            module = build_module(self.request["model"])
        except ModelBuildError as exc:
            raise RunnerError(str(exc))
        self.hooks = find_hooks(module)
        if self.hooks and not self.request.get("allow_hooks"):
            raise RunnerError(
                "model carries hooks, which slow eager inference down: %s "
                "(remove them, bake the pruning with 'edgebench bake', "
                "or pass --allow-hooks to measure anyway)" % "; ".join(self.hooks)
            )
        self.torch = torch
        self.module = module.to(self.torch_device)
        if self.precision == "fp16":
            self.module = self.module.half()
        self.input_names = [spec["name"] for spec in self.request["inputs"]]

    def bind(self, inputs):
        torch = self.torch
        tensors = [self._in_precision(torch.from_numpy(inputs[name])) for name in self.input_names]
        self.copies = self.on_gpu and self.include_copies
        if self.copies:
            self.host_args = tuple(tensor.pin_memory() for tensor in tensors)
        else:
            self.args = tuple(tensor.to(self.torch_device) for tensor in tensors)
        # The worker measures one model in one thread: enter inference mode once, not per call.
        self._inference_mode = torch.inference_mode()
        self._inference_mode.__enter__()

    def infer(self):
        if not self.copies:
            self.module(*self.args)
            return
        args = tuple(tensor.to(self.torch_device, non_blocking=True) for tensor in self.host_args)
        _to_host(self.module(*args))

    def synchronize(self):
        if self.on_gpu:
            self.torch.cuda.synchronize()

    def layer_profile(self):
        """Per-module times over ``PROFILE_RUNS`` inferences under ``torch.profiler``."""
        from edgebench.board import layer_profiles
        from edgebench.board.runners.eager_profile import module_profile

        def run():
            self.infer()
            self.synchronize()

        runs, layers = module_profile(self.torch, self.module, run, layer_profiles.PROFILE_RUNS, self.on_gpu)
        return layer_profiles.profile_rows(runs, layers)

    def device_timer(self):
        return TorchEventTimer(self.torch) if self.on_gpu else None

    def describe(self):
        torch = self.torch
        return {
            "library": "torch",
            "version": torch.__version__,
            "device": self.device,
            "precision": self.precision,
            "options": {
                "threads": torch.get_num_threads(),
                "interop_threads": torch.get_num_interop_threads(),
                "threads_set": bool(self.threads),
            },
            "hooks": self.hooks,
            "include_copies": self.include_copies if self.on_gpu else None,
            # Peak of the caching allocator's tensors: no CUDA context, no cached free blocks.
            "device_peak_mb": torch.cuda.max_memory_allocated() / (1024.0 * 1024.0) if self.on_gpu else None,
        }

    def close(self):
        if getattr(self, "_inference_mode", None) is not None:
            self._inference_mode.__exit__(None, None, None)

    def _in_precision(self, tensor):
        return tensor.half() if self.precision == "fp16" and tensor.is_floating_point() else tensor


class TorchEventTimer:
    """Device time of one iteration from two CUDA events on torch's current stream (the harness's
    ``device_timer`` protocol)."""

    def __init__(self, torch):
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def record_start(self):
        self.start.record()

    def record_end(self):
        self.end.record()

    def elapsed_ms(self):
        self.end.synchronize()
        return self.start.elapsed_time(self.end)


def _to_host(output):
    """Copy a model's output (a tensor, or tuples, lists and dicts of them) back to the host."""
    if hasattr(output, "to") and hasattr(output, "is_floating_point"):
        return output.to("cpu", non_blocking=True)
    if isinstance(output, (tuple, list)):
        return [_to_host(item) for item in output]
    if isinstance(output, dict):
        return {key: _to_host(value) for key, value in output.items()}
    return output


def find_hooks(module):
    """``"name: kind"`` for every submodule carrying a forward hook, pre-hook or prune mask.

    The hooks ``torch.export`` puts on a program's module (input checks, state handling) are part
    of the program, not something a user added, and are not counted."""
    import torch
    from torch.nn.utils import prune

    found = []
    for name, submodule in module.named_modules():
        label = name or "<root>"
        for hook in submodule._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                found.append("%s: prune mask on %s" % (label, hook._tensor_name))
            elif not _torch_export_hook(hook):
                found.append("%s: forward pre-hook" % label)
        if any(not _torch_export_hook(hook) for hook in submodule._forward_hooks.values()):
            found.append("%s: forward hook" % label)
    global_hooks = torch.nn.modules.module
    if global_hooks._global_forward_hooks or global_hooks._global_forward_pre_hooks:
        found.append("<global>: forward hook")
    return found


def _torch_export_hook(hook):
    return (getattr(hook, "__module__", None) or "").startswith("torch.export")
