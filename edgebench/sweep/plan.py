"""Which measurements a sweep makes: models x batch sizes x precisions x backends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

from edgebench.errors import UsageError
from edgebench.models import ResolvedModel
from edgebench.board.runners import is_installed, runner_class, runner_names

DEFAULT_MODELS = ("torchvision:mobilenet_v2", "torchvision:resnet18")
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Measurement:
    model: ResolvedModel
    backend: str
    batch: int
    precision: str = "fp32"
    #: Why this combination cannot run here at all (no worker is started): it is recorded
    #: ``unavailable`` with this reason, beside what was measured.
    unavailable: Optional[str] = None


@dataclass(frozen=True)
class Plan:
    measurements: list[Measurement]
    #: Combinations left out because the backend cannot run that kind of model.
    skipped: list[str] = field(default_factory=list)


def choose_backends(requested: Sequence[str], target_backends: Sequence[str]) -> list[str]:
    """The requested backends, all of which the target must run (``edgebench prune`` measures
    every one); see ``sweep_backends``."""
    backends, not_run = sweep_backends(requested, target_backends)
    if not_run:
        raise UsageError(next(iter(not_run.values())))
    return backends


def sweep_backends(requested: Sequence[str], target_backends: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The requested backends, checked, and why each one the target does not run cannot run
    here (the sweep records it ``unavailable``; an unknown name is a usage error). When none was
    requested, every installed backend the target lists. A requested backend whose library is
    missing is kept: its worker reports it ``unavailable`` with the reason (the library may be
    missing here and present on the board)."""
    known = runner_names()
    if not requested:
        return [name for name in known if name in target_backends and is_installed(name)], {}
    for name in requested:
        if name not in known:
            raise UsageError(f"unknown backend {name!r}; known backends: {', '.join(known)}")
    not_run = {name: f"the target does not run backend {name!r}; its backends: {', '.join(target_backends)}"
               for name in requested if name not in target_backends}
    return list(dict.fromkeys(requested)), not_run


def check_precisions(precisions: Sequence[str]) -> list[str]:
    for precision in precisions:
        if precision not in PRECISIONS:
            raise UsageError(f"--precision takes {', '.join(PRECISIONS)}, not {precision!r}")
    return list(dict.fromkeys(precisions))


def plan(models: Sequence[ResolvedModel], backends: Sequence[str], batches: Sequence[int],
         backends_requested: bool, precisions: Sequence[str] = ("fp32",),
         unavailable: Optional[Mapping[str, str]] = None) -> Plan:
    """Every combination a backend can run. A requested backend that cannot run a model kind
    is still planned, so the failure shows up as an error record rather than silently; so is a
    precision a backend does not run, which its worker reports ``unavailable``, and a backend in
    ``unavailable`` (name -> why it cannot run here), recorded so without a worker."""
    unavailable = unavailable or {}
    measurements, skipped = [], []
    for model in models:
        for batch in batches:
            for precision in precisions:
                for backend in backends:
                    if not backends_requested and not can_run(backend, model):
                        skipped.append(f"{model.name} on {backend}: {backend} does not run {model.kind} models")
                        continue
                    measurements.append(Measurement(model, backend, batch, precision, unavailable.get(backend)))
    return Plan(measurements, list(dict.fromkeys(skipped)))


def can_run(backend: str, model: ResolvedModel) -> bool:
    """A torch model can be exported for an ONNX backend; an ONNX file cannot become torch."""
    return model.kind == "torch" or runner_class(backend).model_kind == "onnx"
