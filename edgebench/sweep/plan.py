"""Which measurements a sweep makes: models x batch sizes x precisions x backends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Plan:
    measurements: list[Measurement]
    #: Combinations left out because the backend cannot run that kind of model.
    skipped: list[str] = field(default_factory=list)


def choose_backends(requested: Sequence[str], target_backends: Sequence[str]) -> list[str]:
    """The requested backends, checked; when none was requested, every installed backend the
    target lists. A requested backend whose library is missing is kept: its worker reports it
    ``unavailable`` with the reason, a record rather than a usage error (the library may be
    missing here and present on the board)."""
    known = runner_names()
    if not requested:
        return [name for name in known if name in target_backends and is_installed(name)]
    for name in requested:
        if name not in known:
            raise UsageError(f"unknown backend {name!r}; known backends: {', '.join(known)}")
        if name not in target_backends:
            raise UsageError(f"the target does not run backend {name!r}; its backends: {', '.join(target_backends)}")
    return list(dict.fromkeys(requested))


def check_precisions(precisions: Sequence[str]) -> list[str]:
    for precision in precisions:
        if precision not in PRECISIONS:
            raise UsageError(f"--precision takes {', '.join(PRECISIONS)}, not {precision!r}")
    return list(dict.fromkeys(precisions))


def plan(models: Sequence[ResolvedModel], backends: Sequence[str], batches: Sequence[int],
         backends_requested: bool, precisions: Sequence[str] = ("fp32",)) -> Plan:
    """Every combination a backend can run. A requested backend that cannot run a model kind
    is still planned, so the failure shows up as an error record rather than silently; so is a
    precision a backend does not run, which its worker reports ``unavailable``."""
    measurements, skipped = [], []
    for model in models:
        for batch in batches:
            for precision in precisions:
                for backend in backends:
                    if not backends_requested and not can_run(backend, model):
                        skipped.append(f"{model.name} on {backend}: {backend} does not run {model.kind} models")
                        continue
                    measurements.append(Measurement(model, backend, batch, precision))
    return Plan(measurements, list(dict.fromkeys(skipped)))


def can_run(backend: str, model: ResolvedModel) -> bool:
    """A torch model can be exported for an ONNX backend; an ONNX file cannot become torch."""
    return model.kind == "torch" or runner_class(backend).model_kind == "onnx"
