"""What a backend tells the harness: how to load, infer and synchronize. Nothing else.

Timing is the harness's job (``edgebench.board.harness``), never the runner's, so every
backend is measured by the same loop. Board-side: Python 3.8, standard library and numpy;
a runner imports its backend library inside ``load`` so the registry stays import-light.
"""

from __future__ import annotations

import importlib


class RunnerError(Exception):
    """An expected failure with a message the user can act on (no traceback needed)."""


class RunnerUnavailable(RunnerError):
    """The backend cannot run here (library or device missing): not the user's error."""


class Runner:
    name = ""
    #: Importable module the backend needs; absent means the runner is unavailable.
    requires = ""
    #: Model kind the runner consumes: "torch" (a build_module recipe) or "onnx" (a file).
    model_kind = ""
    #: Backend options accepted from ``--backend-option KEY=VALUE``, with their types.
    option_types = {}

    def __init__(self, request):
        self.request = request
        self.device = request.get("device", "cpu")
        self.threads = request.get("threads")
        self.options = request.get("backend_options", {})
        #: fp32, fp16 or int8; a runner that cannot run it raises RunnerUnavailable in ``load``.
        self.precision = request.get("precision", "fp32")
        #: On GPU devices: whether each timed inference copies its inputs in and outputs back.
        self.include_copies = bool(request.get("include_copies", False))
        self.warnings = []

    def import_backend(self):
        """Import the backend library. Timed apart from ``load`` as ``import_s``."""
        importlib.import_module(self.requires)

    def load(self):
        """Build the model, session or engine. Timed as ``build_s``."""
        raise NotImplementedError

    def bind(self, inputs):
        """Place the numpy ``inputs`` (name -> array) where ``infer`` reads them. Not timed."""
        raise NotImplementedError

    def infer(self):
        """Run one inference on the bound inputs."""
        raise NotImplementedError

    def synchronize(self):
        """Wait until the device has finished ``infer``'s work (asynchronous devices only)."""

    def describe(self):
        """Versions and the effective options that change timing, for the record. The record takes
        ``include_copies``, ``deserialize_s`` and ``device_peak_mb`` into fields of its own; the
        worker reads ``cuda_graphs`` to warn when ``--cuda-graphs`` was not honoured.

        Two methods a runner may add: ``device_timer()`` (see ``edgebench.board.harness``) and
        ``layer_profile()``, for ``--profile-layers``: called after the timed loop, it profiles
        separate runs and returns rows in ``edgebench.board.layer_profiles``'s shape, each layer
        mapped to the model's module where it can be."""
        raise NotImplementedError

    def require_precision(self, supported, where=""):
        """RunnerUnavailable unless the request's precision is one of ``supported``."""
        if self.precision not in supported:
            raise RunnerUnavailable("%s%s runs %s, not %s" % (
                self.name, where, " or ".join(supported), self.precision))

    def close(self):
        """Release what ``load`` acquired."""


def first_line(exc):
    """The first line of an exception's message, for one-line errors."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
