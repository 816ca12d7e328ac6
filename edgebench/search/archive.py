"""Everything a search measured: the individuals (one per distinct set of widths), each
generation's front and hypervolume, the final front, and the files that keep them.

The objectives are minimised: ``1 - accuracy`` and either the latency measured on the target
relative to the baseline, one objective per backend, or the MACs relative to the baseline's. One
latency objective per backend because a model is deployed on one of them: their maximum, the
objective this once was, let the slower backend (eager) decide every comparison and gave the
faster one (ONNX Runtime) away. The hypervolume of a generation is that of the front of every
individual measured up to it, against the reference point (``REFERENCE_ACCURACY``, then
``REFERENCE_RATIO`` per second objective): the population's own front can lose an interior point
when NSGA-II's crowding distance trims a front larger than the population, but what the search has
found cannot shrink.

``front.csv`` (one row per individual, then one per fine-tuned front member) and ``report.json``
are rewritten whole after every generation, so an interrupted search leaves what it measured.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from pymoo.indicators.hv import Hypervolume
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from torch import nn

from edgebench.models.artifacts import atomic_target
from edgebench.prune.outputs import write_report_json
from edgebench.search.space import Widths
from edgebench.sweep.paired import Ratio

OBJECTIVES = ("accuracy,latency", "accuracy,macs")
# (1 - accuracy, then each latency or the MACs ratio): a model no better than chance, or one slower
# than the baseline by more than 10%, adds nothing to the hypervolume.
REFERENCE_ACCURACY, REFERENCE_RATIO = 1.0, 1.1
# The latency objective of a model a backend could not measure: dominated by every measured one.
UNMEASURED = 1e6
FRONT_CSV = "front.csv"


@dataclass
class Individual:
    """One distinct set of widths: built, fine-tuned briefly, measured once."""

    number: int
    generation: int  # the generation that first measured it
    widths: Widths
    accuracy: float
    macs: int
    params: int
    latency_ms: dict[str, Optional[float]] = field(default_factory=dict)
    latency_ratio: dict[str, Optional[Ratio]] = field(default_factory=dict)  # to the baseline, per backend
    module: Optional[nn.Module] = None  # held while it is in the population: the final fine-tune starts from it

    def latency(self) -> Optional[float]:
        return worst_ratio(self.latency_ratio)

    def as_dict(self, groups: list[str]) -> dict[str, Any]:
        return {"individual": self.number, "generation": self.generation, "widths": dict(zip(groups, self.widths)),
                "accuracy": self.accuracy, "macs": self.macs, "params": self.params, "latency_ms": self.latency_ms,
                "latency_ratio": {b: r.as_dict() if r else None for b, r in self.latency_ratio.items()}}


@dataclass
class Tuned:
    """A member of the final front after the longer fine-tune, measured again."""

    individual: Individual
    accuracy: float
    latency_ms: dict[str, Optional[float]] = field(default_factory=dict)
    latency_ratio: dict[str, Optional[Ratio]] = field(default_factory=dict)
    model_file: Optional[str] = None

    def latency(self) -> Optional[float]:
        return worst_ratio(self.latency_ratio)

    def as_dict(self) -> dict[str, Any]:
        return {"individual": self.individual.number, "accuracy_before": self.individual.accuracy,
                "accuracy": self.accuracy, "macs": self.individual.macs, "latency_ms": self.latency_ms,
                "latency_ratio": {b: r.as_dict() if r else None for b, r in self.latency_ratio.items()},
                "model_file": self.model_file}


def worst_ratio(ratios: dict[str, Optional[Ratio]]) -> Optional[float]:
    """The slowest backend's latency ratio to the baseline; None unless every backend measured it."""
    if not ratios or any(ratio is None for ratio in ratios.values()):
        return None
    return max(ratio.ratio for ratio in ratios.values())


def front_of(points: np.ndarray) -> list[int]:
    """Indices of the non-dominated rows of ``points`` (objectives minimised)."""
    if len(points) == 0:
        return []
    return sorted(int(i) for i in NonDominatedSorting().do(points, only_non_dominated_front=True))


def hypervolume(points: np.ndarray, reference_point: tuple[float, ...]) -> float:
    if len(points) == 0:
        return 0.0
    return float(Hypervolume(ref_point=np.array(reference_point))(points))


class Archive:
    """The search's individuals by widths, its generations, and its files in ``out``."""

    def __init__(self, out: Path, objectives: str, groups: list[str], backends: list[str], baseline_macs: int):
        self.out = out
        self.objectives = objectives
        self.groups = groups
        self.backends = backends
        self.baseline_macs = baseline_macs
        self.individuals: dict[Widths, Individual] = {}
        self.generations: list[dict[str, Any]] = []
        self.final: list[Tuned] = []

    @property
    def n_objectives(self) -> int:
        return 2 if self.objectives == "accuracy,macs" else 1 + len(self.backends)

    @property
    def reference_point(self) -> tuple[float, ...]:
        return (REFERENCE_ACCURACY,) + (REFERENCE_RATIO,) * (self.n_objectives - 1)

    def objective(self, individual: Individual) -> tuple[float, ...]:
        """What NSGA-II minimises for ``individual``: ``1 - accuracy``, then its MACs ratio or its
        latency ratio on each backend."""
        if self.objectives == "accuracy,macs":
            return 1.0 - individual.accuracy, individual.macs / self.baseline_macs
        ratios = [individual.latency_ratio.get(backend) for backend in self.backends]
        return (1.0 - individual.accuracy, *(UNMEASURED if ratio is None else ratio.ratio for ratio in ratios))

    def points(self, individuals: list[Individual]) -> np.ndarray:
        return np.array([self.objective(individual) for individual in individuals]).reshape(-1, self.n_objectives)

    def front(self, individuals: list[Individual]) -> list[Individual]:
        return [individuals[i] for i in front_of(self.points(individuals))]

    def add_generation(self, generation: int, population: list[Individual], new: int, cached: int,
                       elapsed_s: float, reference: dict[str, Optional[Ratio]]) -> dict[str, Any]:
        """Record a generation told to NSGA-II: its population's front and the hypervolume so far."""
        measured = [i for i in self.individuals.values() if i.generation <= generation]
        entry = {"generation": generation, "new": new, "cached": cached,
                 "population": [i.number for i in population],
                 "front": [i.number for i in self.front(population)],
                 "hypervolume": hypervolume(self.points(self.front(measured)), self.reference_point),
                 # The baseline measured against itself in the generation's paired run: the noise floor.
                 "a_a_ratio": {b: r.as_dict() if r else None for b, r in reference.items()},
                 "elapsed_s": round(elapsed_s, 1)}
        self.generations.append(entry)
        return entry

    @staticmethod
    def best_latency(items: list[Individual] | list[Tuned], floor: float) -> Optional[float]:
        """The lowest latency ratio among ``items`` at or above the accuracy floor."""
        latencies = [item.latency() for item in items if item.accuracy >= floor]
        return min((latency for latency in latencies if latency is not None), default=None)

    # -- files ------------------------------------------------------------------------------

    def write(self, report: dict[str, Any]) -> dict[str, Any]:
        """``report.json`` (``report`` plus the individuals, generations and final front) and
        ``front.csv``; returns what report.json holds."""
        whole = {**report, "reference_point": list(self.reference_point),
                 "individuals": [i.as_dict(self.groups) for i in self.individuals.values()],
                 "generations": self.generations, "final_front": [tuned.as_dict() for tuned in self.final]}
        write_report_json(self.out, whole)
        with atomic_target(self.out / FRONT_CSV) as temp_path:
            temp_path.write_text(self._csv(), encoding="utf-8")
        return whole

    def _csv(self) -> str:
        latency_columns = [f"{backend}_{what}" for backend in self.backends for what in ("ratio", "low", "high", "ms")]
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["stage", "generation", "individual", "widths", "accuracy", "macs", "macs_ratio", "params",
                         *latency_columns])
        rows = [("search", i, i.accuracy, i.latency_ratio, i.latency_ms) for i in self.individuals.values()]
        rows += [("final", t.individual, t.accuracy, t.latency_ratio, t.latency_ms) for t in self.final]
        for stage, individual, accuracy, ratios, ms in rows:
            latency = []
            for backend in self.backends:
                ratio = ratios.get(backend)
                latency += [ratio.ratio, ratio.low, ratio.high] if ratio else ["", "", ""]
                latency.append("" if ms.get(backend) is None else ms[backend])
            writer.writerow([stage, individual.generation, individual.number, " ".join(map(str, individual.widths)),
                             accuracy, individual.macs, individual.macs / self.baseline_macs, individual.params,
                             *latency])
        return text.getvalue()
