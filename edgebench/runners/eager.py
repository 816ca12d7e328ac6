"""PyTorch eager: eval mode, ``torch.inference_mode``, and no hooks.

Forward hooks, pre-hooks and ``torch.nn.utils.prune`` masks run Python on every call; they are
why masked pruning measures slower, not faster. A model carrying them is refused unless the
request allows hooks, and then the record names them.
"""

from __future__ import annotations

from edgebench.runners.base import Runner, RunnerError, RunnerUnavailable

# Target device names -> torch devices. DLA cores run TensorRT engines only.
_TORCH_DEVICES = {"cpu": "cpu", "gpu": "cuda"}


class EagerRunner(Runner):
    name = "eager"
    requires = "torch"
    model_kind = "torch"
    option_types = {"interop_threads": int}

    def import_backend(self):
        super().import_backend()
        if self.request["model"].get("format") == "torchvision":
            import torchvision  # noqa: F401  (the model's own code, not its build)

    def load(self):
        import torch

        from edgebench.measure.torch_models import ModelBuildError, build_module

        if self.device not in _TORCH_DEVICES:
            raise RunnerUnavailable("PyTorch eager cannot run on %s (DLA cores run TensorRT engines only)"
                                    % self.device)
        self.torch_device = _TORCH_DEVICES[self.device]
        if self.torch_device == "cuda" and not torch.cuda.is_available():
            raise RunnerUnavailable("PyTorch here has no CUDA device")
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
        self.input_names = [spec["name"] for spec in self.request["inputs"]]

    def bind(self, inputs):
        torch = self.torch
        self.args = tuple(torch.from_numpy(inputs[name]).to(self.torch_device) for name in self.input_names)
        # The worker measures one model in one thread: enter inference mode once, not per call.
        self._inference_mode = torch.inference_mode()
        self._inference_mode.__enter__()

    def infer(self):
        self.module(*self.args)

    def synchronize(self):
        if self.torch_device == "cuda":
            self.torch.cuda.synchronize()

    def describe(self):
        torch = self.torch
        return {
            "library": "torch",
            "version": torch.__version__,
            "device": self.device,
            "options": {
                "threads": torch.get_num_threads(),
                "interop_threads": torch.get_num_interop_threads(),
                "threads_set": bool(self.threads),
            },
            "hooks": self.hooks,
        }

    def close(self):
        if getattr(self, "_inference_mode", None) is not None:
            self._inference_mode.__exit__(None, None, None)


def find_hooks(module):
    """``"name: kind"`` for every submodule carrying a forward hook, pre-hook or prune mask."""
    import torch
    from torch.nn.utils import prune

    found = []
    for name, submodule in module.named_modules():
        label = name or "<root>"
        for hook in submodule._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                found.append("%s: prune mask on %s" % (label, hook._tensor_name))
            else:
                found.append("%s: forward pre-hook" % label)
        if submodule._forward_hooks:
            found.append("%s: forward hook" % label)
    global_hooks = torch.nn.modules.module
    if global_hooks._global_forward_hooks or global_hooks._global_forward_pre_hooks:
        found.append("<global>: forward hook")
    return found
