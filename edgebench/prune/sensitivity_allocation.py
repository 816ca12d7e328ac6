"""``edgebench prune --strategy allocate --allocate sensitivity --sensitivity DIR``: the cut allocated
from a sensitivity analysis (``edgebench sensitivity``), the measurement-based autopruning of
Distiller-based studies on Jetson AGX Xavier.

Every group starts unpruned. Step by step, the sparsity that costs the least metric per unit of
measured latency saved is taken: for each group, each deeper cut than the one it has, the extra
metric drop over the extra saving (the saving is ``1 - ratio`` on the backend that gained least;
a cut that saved nothing more is never taken). Steps stop once the predicted latency reaches
``--budget``. The prediction assumes the groups' savings add up: predicted ratio = 1 - the sum of
the chosen cuts' savings, per backend. That additivity is an assumption (cutting one group changes
what the next one's cut saves), so the cut is made once, fine-tuned, and measured against the
baseline like the static cut (``StaticPruner``): the report puts the predicted ratio beside the
measured one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import torch

from edgebench.board.torch_models import build_module
from edgebench.errors import UsageError
from edgebench.models.fingerprint import module_fingerprint
from edgebench.prune.baseline import Prunable
from edgebench.prune.loop import Baseline, Outcome
from edgebench.prune.sensitivity import Point, chosen_groups
from edgebench.prune.sensitivity_table import Sensitivity
from edgebench.prune.static import StaticPruner

ADDITIVITY = ("predicted latency ratio = 1 - the sum of the chosen cuts' savings, each measured with its group "
              "cut alone: additivity is an assumption, the measured ratio is the answer")


@dataclass(frozen=True)
class Allocation:
    """The sparsity chosen per group (groups left whole are absent), the predicted latency ratio per
    backend, the predicted metric drop (also a sum) and each step as taken."""

    chosen: dict[str, Point]
    predicted: dict[str, float]
    predicted_drop: float
    reached: bool
    steps: list[str] = field(default_factory=list)


def saving(point: Point, backends: Sequence[str]) -> Optional[float]:
    """The share of the latency the cut saved on the backend that gained least; None if unmeasured."""
    ratios = [point.ratio.get(backend) for backend in backends]
    if any(ratio is None for ratio in ratios):
        return None
    return 1.0 - max(ratio.ratio for ratio in ratios)


def allocate(points: Sequence[Point], backends: Sequence[str], budget: float) -> Allocation:
    """Least sensitive first, until every backend's predicted ratio is at most ``budget``."""
    options: dict[str, list[tuple[Point, float]]] = {}
    for point in points:
        gained = saving(point, backends)
        if point.channels_after < point.channels_before and gained is not None:
            options.setdefault(point.group, []).append((point, gained))
    chosen: dict[str, tuple[Point, float]] = {}
    steps: list[str] = []

    def predicted() -> dict[str, float]:
        return {backend: 1.0 - sum(1.0 - point.ratio[backend].ratio for point, _ in chosen.values())
                for backend in backends}

    while not all(ratio <= budget for ratio in predicted().values()):
        best: Optional[tuple[float, float, str, Point]] = None
        for group, choices in options.items():
            current, current_saving = chosen.get(group, (None, 0.0))
            current_drop = current.drop if current else 0.0
            current_width = current.channels_after if current else choices[0][0].channels_before
            for point, gained in choices:
                if point.channels_after >= current_width or gained <= current_saving:
                    continue
                cost = (point.drop - current_drop) / (gained - current_saving)
                if best is None or (cost, -gained) < (best[0], -best[1]):
                    best = (cost, gained, group, point)
        if best is None:
            break
        cost, gained, group, point = best
        chosen[group] = (point, gained)
        steps.append(f"{group} at sparsity {point.sparsity:g} ({point.channels_before}->{point.channels_after}): "
                     f"saves {gained:.1%}, {point.metric} drop {point.drop:+.2%} ({cost:+.3f} per unit saved)")
    ratios = predicted()
    return Allocation({group: point for group, (point, _) in chosen.items()}, ratios,
                      sum(point.drop for point, _ in chosen.values()), all(r <= budget for r in ratios.values()),
                      steps)


def check_sensitivity(sensitivity: Sensitivity, prunable: Prunable, task, criterion: str,
                      backends: Sequence[str]) -> None:
    """One line unless the analysis was made for this model (spec fingerprint), task and criterion,
    on these backends, and names only groups of this model (checked on the untrained model: the
    trained baseline's weights are checked when it exists, in ``choose_cut``)."""
    task_name = task.name
    report, where = sensitivity.report, f"--sensitivity {sensitivity.directory}"
    if report.get("model_fingerprint") != prunable.resolved.fingerprint:
        raise UsageError(f"{where} was measured on another model ({report.get('model')}, "
                         f"{str(report.get('model_fingerprint'))[:19]}), not {prunable.resolved.name} "
                         f"({prunable.resolved.fingerprint[:19]})")
    if report.get("task") != task_name:
        raise UsageError(f"{where} was measured on task {report.get('task')}, not {task_name}")
    if report.get("criterion") != criterion:
        raise UsageError(f"{where} cut the channels by {report.get('criterion')}, not {criterion}: give "
                         f"--criterion {report.get('criterion')}")
    unmeasured = [backend for backend in backends if backend not in sensitivity.backends]
    if unmeasured:
        raise UsageError(f"{where} has no latency on {', '.join(unmeasured)}; it measured "
                         f"{', '.join(sensitivity.backends)}")
    groups = chosen_groups(build_module(prunable.resolved.recipe), task.example_input, ())
    foreign = [group for group in sensitivity.groups() if group not in groups]
    if foreign:
        raise UsageError(f"{where} names group(s) this model does not have: {', '.join(foreign)}")
    if not sensitivity.points:
        raise UsageError(f"{where}: sensitivity.csv has no measured group")


class SensitivityAllocator(StaticPruner):
    """The static strategy with the cut chosen from a sensitivity analysis (``choose_cut``)."""

    def __init__(self, *args, sensitivity: Sensitivity, **kwargs):
        super().__init__(*args, **kwargs)
        self.sensitivity = sensitivity
        self.allocation: Optional[Allocation] = None

    def run(self, prunable: Prunable) -> Outcome:
        outcome = super().run(prunable)
        allocation = self.allocation
        if allocation is not None:
            measured = {backend: (ratio or {}).get("ratio")
                        for backend, ratio in outcome.report["final"]["latency_ratio"].items()}
            outcome.report["allocation"] = {
                "source": str(self.sensitivity.directory), "mode": self.sensitivity.modes()[0],
                "budget": self.config.budget,
                "assumption": ADDITIVITY, "reached": allocation.reached,
                "predicted_ratio": allocation.predicted, "measured_ratio": measured,
                "predicted_metric_drop": allocation.predicted_drop,
                "groups": [{"group": group, "sparsity": point.sparsity,
                            "channels": [point.channels_before, point.channels_after], "metric_drop": point.drop,
                            "ratio": {b: point.ratio[b].ratio for b in self.backends}}
                           for group, point in allocation.chosen.items()],
                "steps": allocation.steps,
            }
            self.log("allocation: predicted " + ", ".join(f"{b} {r:.3f}x" for b, r in allocation.predicted.items())
                     + "; measured " + ", ".join(f"{b} {r:.3f}x" if r is not None else f"{b} not measured"
                                                 for b, r in measured.items()) + " (additivity assumed)")
        return outcome

    def choose_cut(self, base: Baseline, units: dict, scores: dict[str, torch.Tensor]
                   ) -> tuple[dict[str, list[int]], str, str]:
        sensitivity, where = self.sensitivity, f"--sensitivity {self.sensitivity.directory}"
        trained = module_fingerprint(base.module)
        if sensitivity.report.get("baseline_fingerprint") != trained:
            raise UsageError(f"{where} was measured on other trained weights than this baseline's (trained "
                             f"{sensitivity.report.get('train_steps')} steps there, {self.config.train_steps} "
                             "here, or trained again): run edgebench sensitivity on this baseline")
        for point in sensitivity.points:
            if point.channels_before != len(scores[point.group]):
                raise UsageError(f"{where}: {point.group} had {point.channels_before} channels there, "
                                 f"{len(scores[point.group])} here")
        if not sensitivity.report.get("complete"):
            self.log(f"allocation: {where} is an interrupted analysis; groups it did not reach stay whole")
        allocation = allocate(sensitivity.points, self.backends, self.config.budget)
        self.allocation = allocation
        for step in allocation.steps:
            self.log(f"allocation: {step}")
        predicted = ", ".join(f"{b} {r:.3f}x" for b, r in allocation.predicted.items())
        if not allocation.reached:
            self.log(f"allocation: the budget {self.config.budget:g} is out of reach of the measured cuts; "
                     f"cutting to a predicted {predicted}")
        drops = {group: sorted(torch.argsort(scores[group])[: point.channels_before - point.channels_after].tolist())
                 for group, point in allocation.chosen.items()}
        rule = (f"allocated from the sensitivity analysis ({self.config.criterion}), least sensitive first, to a "
                f"predicted {predicted} of the baseline latency (additivity assumed)")
        return drops, rule, f"sensitivity allocation to {self.config.budget:g}"
