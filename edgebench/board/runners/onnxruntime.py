"""ONNX Runtime: one InferenceSession, CPU here, the CUDA or TensorRT provider on a GPU device.

Options that change timing stay at ONNX Runtime's defaults unless set, and the record says
which were set and to what. On the GPU, ``provider=cuda`` (default) or ``provider=tensorrt``
picks the execution provider; fp16 is the TensorRT provider's ``trt_fp16_enable``. Without
``include_copies`` the inputs live on the device and outputs stay there (I/O binding); with it,
every run copies numpy inputs in and outputs back.

``layer_profile`` (``--profile-layers``) runs a second session made with ONNX Runtime's profiler
on, so the timed session never profiles; its trace's node events become rows mapped to the
model's modules (``edgebench.board.layer_profiles``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from edgebench.board import layer_profiles
from edgebench.board.runners.base import Runner, RunnerError, RunnerUnavailable, first_line

_OPTIMIZATION_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
_EXECUTION_MODES = {"sequential": "ORT_SEQUENTIAL", "parallel": "ORT_PARALLEL"}
# provider option -> the providers of a GPU session, the first one the measured one.
_GPU_PROVIDERS = {
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
_DEVICE_PROVIDERS = {"cpu": ["CPUExecutionProvider"], "gpu": _GPU_PROVIDERS["cuda"]}


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"
    requires = "onnxruntime"
    model_kind = "onnx"
    option_types = {
        "inter_op_threads": int,
        "allow_spinning": bool,
        "graph_optimization_level": str,
        "execution_mode": str,
        "provider": str,
    }

    def load(self):
        import onnxruntime as ort

        self.ort = ort
        providers = self._providers()
        self._check_precision(providers[0])
        try:
            self.session = self._new_session(self._session_options(), providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            raise RunnerError("ONNX Runtime cannot load the model: %s" % first_line(exc))
        used = self.session.get_providers()
        if used[0] != providers[0]:  # ORT falls back quietly when a provider's libraries fail to load
            raise RunnerUnavailable("%s did not load (missing CUDA, cuDNN or TensorRT libraries?); the session "
                                    "fell back to %s" % (providers[0], used[0]))
        self.output_names = [output.name for output in self.session.get_outputs()]

    def bind(self, inputs):
        expected = {item.name for item in self.session.get_inputs()}
        missing = expected - set(inputs)
        if missing:
            raise RunnerError("model inputs without data: %s" % ", ".join(sorted(missing)))
        self.feeds = {name: inputs[name] for name in expected}
        self.binding = self._binding(self.session)

    def infer(self):
        if self.binding is not None:
            self.session.run_with_iobinding(self.binding)
        else:
            self.session.run(self.output_names, self.feeds)

    def layer_profile(self):
        """Per-node times from ONNX Runtime's profiler over ``PROFILE_RUNS`` runs of a second
        session with the timed one's options and providers, after a first, cold run that is
        dropped; the trace file is removed."""
        options = self._session_options()
        folder = tempfile.mkdtemp(prefix="edgebench-ort-profile-")
        try:
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(folder, "profile")
            session = self._new_session(options, self.session.get_providers())
            binding = self._binding(session)
            for _ in range(layer_profiles.PROFILE_RUNS + 1):
                self._run(session, binding)
            with open(session.end_profiling()) as trace:
                events = json.load(trace)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        runs, layers = trace_runs(events, layer_profiles.OnnxModuleMap.from_file(self.request["model"]["path"]))
        return layer_profiles.profile_rows(runs[1:], layers)  # the first run is a cold one

    def describe(self):
        return {
            "library": "onnxruntime",
            "version": self.ort.__version__,
            "device": self.device,
            "precision": self.precision,
            "providers": self.session.get_providers(),
            "options": self.applied,
            "include_copies": self.include_copies if self.device == "gpu" else None,
        }

    def close(self):
        self.session = None

    def _providers(self):
        if self.device not in _DEVICE_PROVIDERS:
            raise RunnerUnavailable("the ONNX Runtime runner has no provider for device %r" % self.device)
        wanted = _DEVICE_PROVIDERS[self.device]
        if "provider" in self.options:
            if self.device != "gpu":
                raise RunnerError("onnxruntime.provider picks the GPU provider; device %s has none" % self.device)
            wanted = _GPU_PROVIDERS[_choice({key: key for key in _GPU_PROVIDERS}, "provider", self.options)]
        available = self.ort.get_available_providers()
        if wanted[0] not in available:
            raise RunnerUnavailable(
                "%s is not in this onnxruntime build (has %s)" % (wanted[0], ", ".join(available))
            )
        return wanted

    def _check_precision(self, provider):
        """fp32 everywhere; fp16 through the TensorRT provider only (the others need an fp16 model)."""
        if provider == "TensorrtExecutionProvider":
            self.require_precision(("fp32", "fp16"), " with TensorrtExecutionProvider")
        else:
            self.require_precision(("fp32",), " with %s" % provider)

    def _with_provider_options(self, providers):
        if self.precision == "fp16":  # only reached with the TensorRT provider first
            return [(providers[0], {"trt_fp16_enable": True})] + providers[1:]
        return providers

    def _new_session(self, options, providers):
        return self.ort.InferenceSession(self.request["model"]["path"], sess_options=options,
                                         providers=self._with_provider_options(providers))

    def _binding(self, session):
        """Inputs copied to the GPU once, outputs left on it: the runs time the model alone. None
        where each run takes numpy inputs (the CPU, or the GPU with ``include_copies``)."""
        if self.device != "gpu" or self.include_copies:
            return None
        binding = session.io_binding()
        for name, array in self.feeds.items():
            binding.bind_ortvalue_input(name, self.ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0))
        for name in self.output_names:
            binding.bind_output(name, "cuda")
        return binding

    def _run(self, session, binding):
        # infer() spells this out for the timed session: one call less inside the timed loop.
        if binding is not None:
            session.run_with_iobinding(binding)
        else:
            session.run(self.output_names, self.feeds)

    def _session_options(self):
        """SessionOptions with only what the user set; ``self.applied`` records every option."""
        ort = self.ort
        options = ort.SessionOptions()
        set_by_user = dict(self.options)
        if self.threads:
            options.intra_op_num_threads = self.threads
        if "inter_op_threads" in set_by_user:
            options.inter_op_num_threads = set_by_user["inter_op_threads"]
        if "allow_spinning" in set_by_user:
            flag = "1" if set_by_user["allow_spinning"] else "0"
            options.add_session_config_entry("session.intra_op.allow_spinning", flag)
            options.add_session_config_entry("session.inter_op.allow_spinning", flag)
        if "graph_optimization_level" in set_by_user:
            options.graph_optimization_level = getattr(
                ort.GraphOptimizationLevel,
                _choice(_OPTIMIZATION_LEVELS, "graph_optimization_level", set_by_user),
            )
        if "execution_mode" in set_by_user:
            options.execution_mode = getattr(
                ort.ExecutionMode, _choice(_EXECUTION_MODES, "execution_mode", set_by_user)
            )
        self.applied = {
            # 0 means "ONNX Runtime decides" (one thread per physical core).
            "intra_op_threads": options.intra_op_num_threads,
            "inter_op_threads": options.inter_op_num_threads,
            "allow_spinning": set_by_user.get("allow_spinning", "default"),
            "graph_optimization_level": str(options.graph_optimization_level).split(".")[-1],
            "execution_mode": str(options.execution_mode).split(".")[-1],
            "set": sorted(set_by_user) + (["intra_op_threads"] if self.threads else []),
        }
        return options


def trace_runs(events, module_map):
    """(runs, layers) for ``layer_profiles.profile_rows`` from an ONNX Runtime profile: its
    Chrome-trace events, where each ``model_run`` holds the run's ``<node>_kernel_time`` events
    (category ``Node``, ``args.op_name``)."""
    spans = sorted((event["ts"], event["ts"] + event["dur"]) for event in events
                   if event.get("cat") == "Session" and event.get("name") == "model_run")
    runs = [{} for _ in spans]
    layers = {}
    suffix = "_kernel_time"
    for event in sorted(events, key=lambda item: item.get("ts", 0)):
        if event.get("cat") != "Node" or not event.get("name", "").endswith(suffix):
            continue
        run = next((runs[index] for index, (start, end) in enumerate(spans) if start <= event["ts"] <= end), None)
        if run is None:
            continue
        name = event["name"][:-len(suffix)]
        ms, calls = run.get(name, (0.0, 0))
        run[name] = (ms + event["dur"] / 1000.0, calls + 1)
        if name not in layers:
            op_type = event.get("args", {}).get("op_name")
            node = module_map.node_of(name, op_type)
            layers[name] = {"module": module_map.module_of(name, op_type), "type": op_type,
                            "onnx_nodes": [node] if node else []}
    return runs, layers


def _choice(choices, key, given):
    value = str(given[key]).lower()
    if value not in choices:
        raise RunnerError("%s must be one of %s, not %r" % (key, ", ".join(choices), given[key]))
    return choices[value]

