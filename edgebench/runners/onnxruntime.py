"""ONNX Runtime: one InferenceSession, CPU here, the CUDA provider on a GPU device.

Options that change timing stay at ONNX Runtime's defaults unless set, and the record says
which were set and to what.
"""

from __future__ import annotations

from edgebench.runners.base import Runner, RunnerError, RunnerUnavailable, first_line

_OPTIMIZATION_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
_EXECUTION_MODES = {"sequential": "ORT_SEQUENTIAL", "parallel": "ORT_PARALLEL"}
_DEVICE_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "gpu": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"
    requires = "onnxruntime"
    model_kind = "onnx"
    option_types = {
        "inter_op_threads": int,
        "allow_spinning": bool,
        "graph_optimization_level": str,
        "execution_mode": str,
    }

    def load(self):
        import onnxruntime as ort

        self.ort = ort
        providers = self._providers()
        options = self._session_options()
        try:
            self.session = ort.InferenceSession(
                self.request["model"]["path"], sess_options=options, providers=providers
            )
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            raise RunnerError("ONNX Runtime cannot load the model: %s" % first_line(exc))
        self.output_names = [output.name for output in self.session.get_outputs()]

    def bind(self, inputs):
        expected = {item.name for item in self.session.get_inputs()}
        missing = expected - set(inputs)
        if missing:
            raise RunnerError("model inputs without data: %s" % ", ".join(sorted(missing)))
        self.feeds = {name: inputs[name] for name in expected}

    def infer(self):
        self.session.run(self.output_names, self.feeds)

    def describe(self):
        return {
            "library": "onnxruntime",
            "version": self.ort.__version__,
            "device": self.device,
            "providers": self.session.get_providers(),
            "options": self.applied,
        }

    def close(self):
        self.session = None

    def _providers(self):
        if self.device not in _DEVICE_PROVIDERS:
            raise RunnerUnavailable("the ONNX Runtime runner has no provider for device %r" % self.device)
        wanted = _DEVICE_PROVIDERS[self.device]
        available = self.ort.get_available_providers()
        if wanted[0] not in available:
            raise RunnerUnavailable(
                "%s is not in this onnxruntime build (has %s)" % (wanted[0], ", ".join(available))
            )
        return wanted

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


def _choice(choices, key, given):
    value = str(given[key]).lower()
    if value not in choices:
        raise RunnerError("%s must be one of %s, not %r" % (key, ", ".join(choices), given[key]))
    return choices[value]

