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
``--budget`` of the baseline on every backend; then it gives back, most important first, the blocks
of ``--round-to`` channels it can restore without leaving the budget (a greedy knapsack overshoots
with its last item). A group is never cut below the narrowest width the model measured.

Everything after the choice is the static strategy's (``StaticPruner``): one cut, ``--finetune-steps``,
a paired measurement against the baseline, then ``--final-finetune-steps`` and the final paired
comparison. The report adds ``latency_model``: what the model predicted for the cut, what was
measured (right after the cut, and for the final model), the error, and the model's own error on
held-out configurations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

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

ALLOCATORS = ("latency-model", "sensitivity")  # sensitivity: prune.sensitivity_allocation
# The least latency ratio a prediction counts as (``_log``).
MIN_RATIO = 1e-3


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


def allocate(scores: Mapping[str, Sequence[float]], models: Mapping[str, LatencyPredictor], budget: float,
             round_to: int) -> Allocation:
    """The kept width of every group in ``scores`` (each channel's score) that the greedy
    knapsack chooses under ``budget`` on every backend's model. Pure and deterministic."""
    groups = {name: _choices(name, score, models, round_to) for name, score in sorted(scores.items())}
    limit = math.log(budget)  # in logarithms, a cut's saving is comparable at any latency

    def widths() -> dict[str, int]:
        return {name: int(group.widths[group.at]) for name, group in groups.items()}

    while True:
        current = widths()
        now = {backend: _log(model.predict(current)) for backend, model in models.items()}
        over = [backend for backend, log_ratio in now.items() if log_ratio > limit]
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
    _give_back(groups, models, limit, widths)
    logs = {backend: _log(model.predict(widths())) for backend, model in models.items()}
    return Allocation(widths(), {backend: math.exp(log_ratio) for backend, log_ratio in logs.items()},
                      all(log_ratio <= limit for log_ratio in logs.values()))


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


def _give_back(groups: dict[str, _Group], models: Mapping[str, LatencyPredictor], limit: float, widths) -> None:
    """Restore, most important first, one aligned block at a time while every prediction (a log
    ratio) stays within ``limit``."""
    if any(_log(model.predict(widths())) > limit for model in models.values()):
        return
    while True:
        current = widths()
        best: Optional[tuple[float, str]] = None
        for name, group in groups.items():
            if group.at == len(group.widths) - 1:
                continue
            wider = group.widths[group.at + 1: group.at + 2]
            fits = all(_log(model.predict_each(current, name, wider))[0] <= limit for model in models.values())
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
        self.allocation = allocate({unit: score.tolist() for unit, score in scores.items()},
                                   {backend: learned.model for backend, learned in self.learned.items()},
                                   config.budget, config.round_to)
        shown = ", ".join(f"{backend} {ratio:.3f}x" for backend, ratio in self.allocation.predicted.items())
        self.log(f"allocation: predicted {shown} of the baseline (budget {config.budget:g})"
                 + ("" if self.allocation.reached else "; the budget is out of the model's reach, cutting as far as "
                    "it covers"))
        rule = f"chosen by the allocation to a predicted {config.budget:g}x of the baseline ({config.criterion})"
        return _drops(scores, self.allocation.widths), rule, f"allocated to {config.budget:g}x"

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
            "backends": {backend: learned.report() for backend, learned in self.learned.items()},
        }
        if not self.allocation.reached:
            report["warnings"].append(f"the latency model cannot reach the budget {self.config.budget:g}: "
                                      f"it predicts {', '.join(f'{b} {r:.3f}x' for b, r in predicted.items())} "
                                      "at the narrowest widths it measured")
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
