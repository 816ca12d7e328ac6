"""``edgebench prune --strategy allocate --allocate latency-model``: keep the most importance under a
latency budget in one cut, as HALP (Shen et al., NeurIPS 2022) does with a latency lookup table,
here with a latency model learned on the target, of the kind ``--latency-model`` says
(``edgebench.prune.latency_kinds``: the per-layer table or the group curves).

The channels are scored by ``--criterion`` (l1 by default); a channel's value is its share of its
group's importance (scores of different layers are not on one scale; a share is: every group holds
one unit). ``allocate`` is a greedy knapsack: from the full model, it repeatedly takes, of every
group, the cut to an aligned narrower width that loses the least importance per unit of predicted
latency saved (in the logarithm of the predicted ratio, so that a saving counts alike at any
latency; summed over the backends still over the budget; the model is asked what the whole
model's ratio would be with that one group at each narrower width), until the model predicts at most
its budget of the baseline on every backend (``--budget``, or that backend's ``--backend-budget``);
then it gives back, most important first, the blocks of ``--round-to`` channels it can restore
without leaving the budget (a greedy knapsack overshoots with its last item). A group is never cut
below the narrowest width the model measured.

The allocation is then checked on the target before it is cut for good: the allocated model is
measured against the baseline in one paired run per backend at the keep rule's confirmation pairing
(``--confirm-rounds`` of ``--confirm-block-time``), and where it measures over a
backend's budget (the model under-predicted this cut), it is allocated again with that backend's aim
lowered by the factor it missed by, at most ``MAX_ALLOCATIONS`` allocations in all (the per-layer
table read 0.160 where ResNet-18's allocated cut measured 0.196 on ONNX Runtime, docs/benchmarks.md).

Everything after the choice is the static strategy's (``StaticPruner``): one cut, ``--finetune-steps``,
a paired measurement against the baseline, then ``--final-finetune-steps`` and the final paired
comparison. The report adds ``latency_model``: what the model predicted for the cut, what was
measured (each check, right after the cut, and for the final model), the error, and the model's own
error on held-out configurations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from edgebench.models.fingerprint import module_fingerprint
from edgebench.prune.baseline import Prunable
from edgebench.prune.latency_cache import latency_key
from edgebench.prune.latency_kinds import DEFAULT_KIND, KINDS, LatencyPredictor
from edgebench.prune.latency_layers import LayerFit
from edgebench.prune.latency_probe import LatencyProbe, Learned
from edgebench.prune.layer_shapes import traced_layers
from edgebench.prune.loop import Baseline, Outcome
from edgebench.prune.static import StaticPruner
from edgebench.prune.zero_pad import cut_zero_padded, residual_branches
from edgebench.sweep.paired import Ratio

ALLOCATORS = ("latency-model", "sensitivity")  # sensitivity: prune.sensitivity_allocation
# The least latency ratio a prediction counts as (``_log``).
MIN_RATIO = 1e-3
# Allocations measured before one is kept: the first, then aimed lower where it measured over budget.
MAX_ALLOCATIONS = 3


@dataclass(frozen=True)
class Allocation:
    widths: dict[str, int]  # every group's kept width
    predicted: dict[str, float]  # per backend, the predicted latency ratio to the baseline
    reached: bool  # whether every prediction is within the budget


@dataclass
class _Group:
    """One group's choices: its aligned widths (the full width last), the importance lost at each
    of them, and where it stands."""

    widths: np.ndarray
    lost: np.ndarray
    at: int


def allocate(scores: Mapping[str, Sequence[float]], models: Mapping[str, LatencyPredictor],
             budgets: Mapping[str, float], round_to: int) -> Allocation:
    """The kept width of every group in ``scores`` (each channel's score) that the greedy
    knapsack chooses with every backend's model within that backend's budget. Pure and
    deterministic."""
    groups = {name: _choices(name, score, models, round_to) for name, score in sorted(scores.items())}
    # In logarithms, a cut's saving is comparable at any latency.
    limits = {backend: math.log(budgets[backend]) for backend in models}

    def widths() -> dict[str, int]:
        return {name: int(group.widths[group.at]) for name, group in groups.items()}

    while True:
        current = widths()
        now = {backend: _log(model.predict(current)) for backend, model in models.items()}
        over = [backend for backend, log_ratio in now.items() if log_ratio > limits[backend]]
        if not over:
            break
        best: Optional[tuple[float, str, int]] = None
        for name, group in groups.items():
            if group.at == 0:
                continue
            saved = sum(now[backend] - _log(models[backend].predict_each(current, name, group.widths[: group.at]))
                        for backend in over)
            lost = group.lost[: group.at] - group.lost[group.at]
            for index in np.flatnonzero(saved > 0):
                value = lost[index] / saved[index]
                if best is None or value < best[0]:
                    best = (value, name, int(index))
        if best is None:
            break  # no cut the model covers saves anything more: the budget is out of its reach
        groups[best[1]].at = best[2]
    _give_back(groups, models, limits, widths)
    logs = {backend: _log(model.predict(widths())) for backend, model in models.items()}
    return Allocation(widths(), {backend: math.exp(log_ratio) for backend, log_ratio in logs.items()},
                      all(log_ratio <= limits[backend] for backend, log_ratio in logs.items()))


def checked_allocation(scores: Mapping[str, Sequence[float]], models: Mapping[str, LatencyPredictor],
                       budgets: Mapping[str, float], round_to: int,
                       measure: Callable[[Mapping[str, int]], Mapping[str, Optional[Ratio]]],
                       log: Callable[[str], None]) -> tuple[Allocation, list[dict[str, Any]]]:
    """``allocate``, its model measured on the target (``measure``: widths -> each backend's ratio
    to the baseline) before it is kept; where it measures over a backend's budget, allocated again
    with that backend's aim lowered by the factor it missed by (the model's error at this cut), at
    most ``MAX_ALLOCATIONS`` allocations in all. The allocation kept, and every check: aim,
    prediction, measurement."""
    aims = dict(budgets)
    checks: list[dict[str, Any]] = []
    while True:
        allocation = allocate(scores, models, aims, round_to)
        measured = measure(allocation.widths)
        checks.append({"aim": dict(aims), "predicted": allocation.predicted, "reached": allocation.reached,
                       "measured": {backend: None if ratio is None else
                                    {"ratio": ratio.ratio, "ci95": [ratio.low, ratio.high]}
                                    for backend, ratio in measured.items()}})
        log(f"allocation {len(checks)}: " + ", ".join(
            f"{backend} predicted {allocation.predicted[backend]:.3f}x, measured "
            + (f"{measured[backend].ratio:.3f}x" if measured.get(backend) else "nothing")
            + f" (budget {budgets[backend]:g})" for backend in budgets)
            + ("" if allocation.reached else "; the budget is out of the model's reach, cutting as far as it covers"))
        over = {backend: ratio.ratio for backend, ratio in measured.items()
                if ratio is not None and ratio.ratio > budgets[backend]}
        # Lower aims cannot help an allocation the model could not bring within the ones it had.
        if not over or not allocation.reached or len(checks) == MAX_ALLOCATIONS:
            return allocation, checks
        aims = {backend: aim * budgets[backend] / over[backend] if backend in over else aim
                for backend, aim in aims.items()}
        log(f"allocation: measured over the budget on {', '.join(over)}; allocating again to a predicted "
            + ", ".join(f"{backend} {aim:.3f}x" for backend, aim in aims.items()))


def _log(ratio):
    """The logarithm of a predicted ratio. A layer table's constant is a difference of
    measurements, so a deep cut could predict nothing or less: it counts as the least latency
    there is (``MIN_RATIO``), not as an error."""
    return np.log(np.maximum(ratio, MIN_RATIO))


def _choices(name: str, score: Sequence[float], models: Mapping[str, LatencyPredictor], round_to: int) -> _Group:
    full = len(score)
    # Every backend's model must cover a width: from the narrowest all of them measured.
    low = max(model.narrowest(name, full) for model in models.values())
    widths = np.array([*range(low, full, round_to), full] if low < full else [full])
    ranked = np.sort(np.asarray(score, dtype=float))
    total = ranked.sum()
    shares = ranked / total if total > 0 else np.zeros(full)  # an all-zero group: nothing to lose
    lost = np.concatenate([[0.0], np.cumsum(shares)])[full - widths]
    return _Group(widths, lost, len(widths) - 1)


def _give_back(groups: dict[str, _Group], models: Mapping[str, LatencyPredictor], limits: Mapping[str, float],
               widths) -> None:
    """Restore, most important first, one aligned block at a time while every backend's prediction
    (a log ratio) stays within its limit."""
    if any(_log(model.predict(widths())) > limits[backend] for backend, model in models.items()):
        return
    while True:
        current = widths()
        best: Optional[tuple[float, str]] = None
        for name, group in groups.items():
            if group.at == len(group.widths) - 1:
                continue
            wider = group.widths[group.at + 1: group.at + 2]
            fits = all(_log(model.predict_each(current, name, wider))[0] <= limits[backend]
                       for backend, model in models.items())
            restored = group.lost[group.at] - group.lost[group.at + 1]
            if fits and (best is None or restored > best[0]):
                best = (restored, name)
        if best is None:
            return
        groups[best[1]].at += 1


class AllocatePruner(StaticPruner):
    """The allocate strategy: the static strategy with the cut chosen by ``allocate`` on a latency
    model of kind ``latency_model`` (``latency_kinds.KINDS``)."""

    allocation: Allocation
    learned: dict[str, Learned]
    checks: list[dict]  # each allocation measured before the cut: aim, prediction, measurement

    def __init__(self, *args, latency_model: str = DEFAULT_KIND, **kwargs):
        super().__init__(*args, **kwargs)
        if latency_model not in KINDS:
            raise ValueError(f"no latency model kind {latency_model!r}")
        self.latency_model = latency_model

    def choose_cut(self, base: Baseline, units: dict, scores: dict[str, torch.Tensor]
                   ) -> tuple[dict[str, list[int]], str, str]:
        config = self.config
        graph = self.graph(base.module, first=False)
        branches = residual_branches(graph) if config.residual == "zero-pad" else {}
        full = {unit: len(score) for unit, score in scores.items()}
        numbers = itertools.count(1)

        def build(widths: Mapping[str, int]):
            drops = _drops(scores, widths)
            label = ", ".join(f"{unit} {full[unit]}->{width}" for unit, width in widths.items())
            module = cut_zero_padded(graph, branches, drops)[0]
            return self.materialize(module, f"probe-{next(numbers):04d}",
                                    f"{self.model_name} [latency probe: {label}]")

        fingerprint = module_fingerprint(base.module)
        keys = {backend: latency_key(self.sweep, backend, fingerprint, self.part, self.input_shape, config.round_to,
                                     config.residual, self.latency_model) for backend in self.backends}
        layers = None
        if self.latency_model == "layers":
            calls = traced_layers(base.module, units, graph.dependencies, self.example_input)
            layers = LayerFit(tuple(calls), self.workdir, config.round_to)
        probe = LatencyProbe(self.sweep, self.backends, config.pairing, config.round_to, self.keep_records, self.log)
        self.learned = probe.learn(base.resolved, full, build, keys, layers)

        def measure(widths: Mapping[str, int]) -> dict[str, Optional[Ratio]]:
            # The confirmation's pairing: many short rounds narrow the check's interval at a like cost.
            paireds = probe.measure_widths(base.resolved, [widths], build, self.backends, config.confirm_pairing)
            return {backend: paired.ratio(1, 0) for backend, paired in paireds.items()}

        self.allocation, self.checks = checked_allocation(
            {unit: score.tolist() for unit, score in scores.items()},
            {backend: learned.model for backend, learned in self.learned.items()},
            {backend: config.budget_on(backend) for backend in self.backends}, config.round_to, measure, self.log)
        budgets = ", ".join(f"{backend} {config.budget_on(backend):g}x" for backend in self.backends)
        rule = f"chosen by the allocation to at most {budgets} of the baseline ({config.criterion})"
        return _drops(scores, self.allocation.widths), rule, f"allocated to {budgets}"

    def run(self, prunable: Prunable) -> Outcome:
        outcome = super().run(prunable)
        report = outcome.report
        predicted = self.allocation.predicted
        [step] = report["steps"] or [{}]
        after_cut = step.get("ratio_to_baseline") or {}
        final = report["final"]["latency_ratio"]
        report["allocate"] = ALLOCATORS[0]
        report["latency_model"] = {
            "kind": self.latency_model,
            "predicted": predicted, "reached": self.allocation.reached, "widths": self.allocation.widths,
            "measured_after_cut": after_cut, "measured_final": final,
            "error_final": {backend: final[backend]["ratio"] / predicted[backend] - 1
                            for backend in predicted if final.get(backend)},
            "checks": self.checks,
            "backends": {backend: learned.report() for backend, learned in self.learned.items()},
        }
        budgets = {backend: self.config.budget_on(backend) for backend in self.backends}
        if not self.allocation.reached:
            aims = ", ".join(f"{b} {aim:.3f}x" for b, aim in self.checks[-1]["aim"].items())
            report["warnings"].append(f"the latency model cannot reach the aim {aims}: "
                                      f"it predicts {', '.join(f'{b} {r:.3f}x' for b, r in predicted.items())} "
                                      "at the narrowest widths it measured")
        last = self.checks[-1]["measured"]
        over = [backend for backend, measured in last.items() if measured and measured["ratio"] > budgets[backend]]
        if over and self.allocation.reached:
            report["warnings"].append(f"the kept allocation measured over its budget on {', '.join(over)} after "
                                      f"{len(self.checks)} allocations")
        for backend, ratio in predicted.items():
            measured = final.get(backend)
            self.log(f"latency model ({backend}): predicted {ratio:.3f}x, measured "
                     + (f"{measured['ratio']:.3f}x [{measured['ci95'][0]:.3f}, {measured['ci95'][1]:.3f}]"
                        if measured else "nothing"))
        return outcome


def _drops(scores: Mapping[str, torch.Tensor], widths: Mapping[str, int]) -> dict[str, list[int]]:
    """Per unit cut to a narrower width, its lowest-scoring channels beyond that width."""
    return {unit: sorted(torch.argsort(scores[unit])[: len(scores[unit]) - width].tolist())
            for unit, width in widths.items() if width < len(scores[unit])}
