"""Runs a planned sweep: one worker per measurement, each record stored as soon as it exists."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from edgebench.board.worker import PROTOCOL_VERSION
from edgebench.models import ExportError, onnx_for, torchscript_for
from edgebench.results.artifacts import ArtifactStore
from edgebench.results.record import Artifact, Method, Record
from edgebench.board.runners import runner_class
from edgebench.sweep.local_worker import LocalWorker
from edgebench.sweep.transport import TransportError, WorkerTransport
from edgebench.sweep.config import SweepConfig
from edgebench.sweep.plan import Measurement
from edgebench.sweep.processes import per_process_settings, run_processes
from edgebench.sweep.records import make_record

COOLDOWN_POLL_S = 2.0
COOLDOWN_MAX_S = 600.0


class Sweep:
    """Measures each planned combination and hands every record to ``on_record`` at once."""

    def __init__(self, config: SweepConfig, run_id: str, host_env: dict,
                 worker: WorkerTransport | None = None, log: Callable[[str], None] = lambda message: None,
                 artifacts: ArtifactStore | None = None):
        self.config = config
        self.run_id = run_id
        self.host_env = host_env
        self.worker = worker or LocalWorker()
        self.log = log
        #: Where each measurement's files are kept (beside the store); None keeps nothing.
        self.artifacts = artifacts

    def run(self, measurements: list[Measurement], on_record: Callable[[Record], None],
            on_start: Callable[[int, Measurement], None] = lambda index, m: None) -> list[Record]:
        records = []
        for index, measurement in enumerate(measurements):
            on_start(index, measurement)
            record = self.measure(measurement)
            on_record(record)
            records.append(record)
        return records

    def measure(self, measurement: Measurement, method: Method = "sweep") -> Record:
        """One measurement in its own worker; ``method`` names why it was taken (a ``power``
        record is one model of a paired comparison, measured alone for its power readings)."""
        if measurement.unavailable:
            return make_record(measurement, {"status": "unavailable", "error": measurement.unavailable, "warnings": []},
                               run_id=self.run_id, config=self.config, host_env=self.host_env, method=method)
        extra_warnings = self.cool_down() if self.config.cooldown else []
        files: list[tuple[str, Path, str]] = []
        try:
            request, files = self.request_and_files(measurement)
        except ExportError as exc:
            result = {"status": "error", "error": f"export failed: {exc}", "warnings": []}
        except TransportError as exc:
            result = {"status": "error", "error": f"cannot send the model to the board: {exc}", "warnings": []}
        except ValueError as exc:
            result = {"status": "error", "error": str(exc), "warnings": []}
        else:
            result = run_processes(lambda: self.worker.run(request, timeout_s=self.config.settings.timeout_s),
                                   self.config.settings.processes)
        kept, not_kept = self.keep_artifacts(files + self.engine_files(result))
        result["warnings"] = extra_warnings + list(result.get("warnings") or []) + not_kept
        return make_record(measurement, result, run_id=self.run_id, config=self.config, host_env=self.host_env,
                           method=method, artifacts=kept)

    def keep_artifacts(self, files: list[tuple[str, Path, str]]) -> tuple[list[Artifact], list[str]]:
        """The files kept in the artifact store, and a warning when they could not be (the
        measurement stands without them)."""
        if self.artifacts is None or not files:
            return [], []
        try:
            return self.artifacts.keep_all(files), []
        except OSError as exc:
            return [], [f"the measured files were not kept in {self.artifacts.root}: {exc}"]

    def engine_files(self, result: dict) -> list[tuple[str, Path, str]]:
        """The TensorRT engine the worker built or loaded, where it lies on this machine."""
        path = ((result.get("backend") or {}).get("engine") or {}).get("path")
        if self.worker.remote or not path or not Path(path).is_file():
            return []  # a board's engine stays in the board's cache
        return [("engine", Path(path), Path(path).name)]

    def cool_down(self) -> list[str]:
        """Wait until every temperature is under the target's limit (``--cooldown``)."""
        limit = self.config.target.thermal.limit_c if self.config.target.thermal else None
        if limit is None:
            return ["--cooldown ignored: the target has no thermal limit"]
        deadline = time.monotonic() + COOLDOWN_MAX_S
        while True:
            state = self.worker.run({"protocol": PROTOCOL_VERSION, "task": "state"}, timeout_s=60)
            temperatures = (state.get("state") or {}).get("temperatures_c") or {}
            if not temperatures:
                return ["--cooldown: no temperature readings on this machine"]
            sensor, hottest = max(temperatures.items(), key=lambda item: item[1])
            if hottest < limit:
                return []
            if time.monotonic() > deadline:
                return [f"cooldown gave up after {COOLDOWN_MAX_S:g} s: {sensor} still at {hottest:.1f} C"]
            self.log(f"cooling down: {sensor} at {hottest:.1f} C, limit {limit:g} C")
            time.sleep(COOLDOWN_POLL_S)

    def request(self, measurement: Measurement) -> dict:
        """The worker request; the ONNX export happens here, cached by model fingerprint."""
        return self.request_and_files(measurement)[0]

    def request_and_files(self, measurement: Measurement) -> tuple[dict, list[tuple[str, Path, str]]]:
        """The worker request, and the local files it has the worker load as (role, path, name):
        the model's own files, and the export made of a torch model (``Record.artifacts``)."""
        model, backend = measurement.model, measurement.backend
        files = [("model", path, _name_beside(path, model.files[0])) for path in model.files]
        if runner_class(backend).model_kind == "onnx":
            onnx_path = onnx_for(model, measurement.batch)
            model_field = {"format": "onnx", "path": self.worker.artifact(onnx_path)}
            if model.kind == "torch":
                files.append(("onnx", onnx_path, onnx_path.name))
        elif model.kind == "torch" and self.worker.remote:
            # A board's PyTorch is older: TorchScript loads across versions, a pickle does not.
            torchscript_path = torchscript_for(model, measurement.batch)
            model_field = {"format": "torch-file", "path": self.worker.artifact(torchscript_path)}
            files.append(("torchscript", torchscript_path, torchscript_path.name))
        elif model.kind == "torch":
            model_field = model.recipe
        else:
            raise ValueError(f"{backend} runs PyTorch models; {model.name} is an ONNX file")
        settings = self.config.settings
        return {
            "protocol": PROTOCOL_VERSION,
            "backend": backend,
            "device": self.config.device,
            "model": model_field,
            "inputs": [spec.as_dict(measurement.batch) for spec in model.inputs],
            "settings": per_process_settings({
                "min_time_s": settings.min_time_s,
                "max_time_s": settings.max_time_s,
                "min_iterations": settings.min_iterations,
                "warmup_s": settings.warmup_s,
                "target_ci": settings.target_ci,
            }, settings.processes),
            "threads": self.config.threads,
            "backend_options": self.config.backend_options.get(backend, {}),
            "allow_hooks": self.config.allow_hooks,
            "power": self.config.power,
            "precision": measurement.precision,
            "include_copies": self.config.include_copies,
            "cuda_graphs": self.config.cuda_graphs,
            "profile_layers": self.config.profile_layers,
            "engine_cache_dir": self.worker.engine_cache_dir,
            # Desktop GPUs: clocks, temperature, memory and the energy counter through NVML.
            "gpu_state": self.config.target.kind == "cuda",
        }, files


def _name_beside(path: Path, model_file: Path) -> str:
    """A model file's name as the model refers to it: an ONNX model's external data by its path
    from the model's directory (it may lie in a subdirectory)."""
    return path.relative_to(model_file.parent).as_posix() if path.is_relative_to(model_file.parent) else path.name
