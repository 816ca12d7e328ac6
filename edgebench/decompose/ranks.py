"""The rank of each layer, chosen by what the target measured against what the layer lost.

Per layer: the candidate ranks are multiples of ``round_to`` (kernels work in vector-width blocks)
whose pair costs fewer MACs than the layer, at most ``candidates`` of them spread from the
smallest to the largest. Each gets its reconstruction error: the relative error of the layer's
output on its real inputs (``reconstruction``). Those within ``max_error`` are measured on the
target against the original layer, in one paired run per backend (``measure``, a ``LayerTimer`` or
a scripted stand-in). The chosen rank is the fastest of those measured significantly faster than
the original on every backend (the whole 95% interval below 1) and at least ``min_speedup`` times
faster by the point estimate; the layer stays whole when there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import nn

from edgebench.decompose.methods import method_named
from edgebench.decompose.reconstruction import relative_error
from edgebench.prune.surgery import layer_macs
from edgebench.sweep.paired import Ratio

# measure(layer, modules, example, labels) -> {backend: [latency of modules[k] over modules[0], k >= 1]};
# ``example`` is one batch-1 input of the layer, ``labels`` one dict per module for its record.
MeasureLayer = Callable[[str, list[nn.Module], torch.Tensor, list[dict]], dict[str, list[Optional[Ratio]]]]


@dataclass(frozen=True)
class RankRule:
    max_error: float
    min_speedup: float = 1.0
    round_to: int = 8
    candidates: int = 4


@dataclass
class RankTrial:
    """One candidate rank of a layer: its cost on paper, its error, and what the target measured."""

    rank: int
    macs: int
    error: float
    ratios: dict[str, Optional[Ratio]] = field(default_factory=dict)  # latency over the original layer's

    @property
    def worst_ratio(self) -> Optional[float]:
        """The latency ratio on the backend that gained least; None when not measured everywhere."""
        if not self.ratios or any(ratio is None for ratio in self.ratios.values()):
            return None
        return max(ratio.ratio for ratio in self.ratios.values())

    def faster(self, min_speedup: float) -> bool:
        worst = self.worst_ratio
        return worst is not None and worst <= 1 / min_speedup and all(r.faster for r in self.ratios.values())

    def as_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "macs": self.macs, "error": self.error,
                "latency_ratio": {b: r.as_dict() if r else None for b, r in self.ratios.items()}}


@dataclass
class LayerChoice:
    """What was decided for one layer; ``rank`` None: left whole, ``reason`` says why."""

    layer: str
    method: str
    full_rank: int
    macs: int
    trials: list[RankTrial]
    rank: Optional[int]
    reason: str
    replacement: Optional[nn.Module] = None  # the pair at the chosen rank

    @property
    def chosen(self) -> Optional[RankTrial]:
        return next((trial for trial in self.trials if trial.rank == self.rank), None)

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "method": self.method, "full_rank": self.full_rank, "macs": self.macs,
                "rank": self.rank, "reason": self.reason, "trials": [trial.as_dict() for trial in self.trials]}


def candidate_ranks(full_rank: int, macs: int, macs_per_rank: int, round_to: int, count: int) -> list[int]:
    """Up to ``count`` multiples of ``round_to``, at most ``full_rank``, whose pair costs fewer
    MACs than the layer (``macs``), spread evenly from the smallest to the largest."""
    aligned = [rank for rank in range(round_to, full_rank + 1, round_to) if rank * macs_per_rank < macs]
    if len(aligned) <= count:
        return aligned
    if count == 1:
        return [aligned[-1]]
    picks = [aligned[round(k * (len(aligned) - 1) / (count - 1))] for k in range(count)]
    return list(dict.fromkeys(picks))


def choose_rank(trials: list[RankTrial], rule: RankRule) -> tuple[Optional[RankTrial], str]:
    """The fastest trial within the error budget and measured faster (ties: the larger rank,
    which loses less), or None and why."""
    within = [trial for trial in trials if trial.error <= rule.max_error]
    if not within:
        best = min(trials, key=lambda trial: trial.error)
        return None, f"no candidate rank within error {rule.max_error:g} (the best, rank {best.rank}, has {best.error:.3g})"
    fast = [trial for trial in within if trial.faster(rule.min_speedup)]
    if not fast:
        wanted = "significantly faster" + (f" by {rule.min_speedup:g}x" if rule.min_speedup > 1 else "")
        return None, f"none of the {len(within)} rank(s) within error {rule.max_error:g} measured {wanted} than the layer"
    chosen = min(fast, key=lambda trial: (trial.worst_ratio, -trial.rank))
    return chosen, f"the fastest of {len(fast)} rank(s) within error {rule.max_error:g} that measured faster"


def plan_layer(name: str, conv: nn.Conv2d, method: str, inputs: torch.Tensor, rule: RankRule,
               measure: MeasureLayer) -> LayerChoice:
    """The rank for one layer: candidates, their errors on ``inputs`` (the layer's own, a batch),
    the measurement of those within the budget, the choice."""
    low_rank = method_named(method).factorize(conv)
    example = inputs[:1]
    macs = _macs(conv, example)
    ranks = candidate_ranks(low_rank.full_rank, macs, _macs(low_rank.at(1), example), rule.round_to,
                            rule.candidates)
    if not ranks:
        return LayerChoice(name, method, low_rank.full_rank, macs, [], None,
                           f"no multiple of {rule.round_to} up to the full rank {low_rank.full_rank} costs fewer "
                           "MACs than the layer")
    pairs = {rank: low_rank.at(rank) for rank in ranks}
    trials = [RankTrial(rank, _macs(pair, example), relative_error(conv, pair, inputs)) for rank, pair in pairs.items()]
    within = [trial for trial in trials if trial.error <= rule.max_error]
    if within:
        labels = [{"stage": "layer", "layer": name, "method": method, "role": "original"}] + [
            {"stage": "layer", "layer": name, "method": method, "role": "candidate", "rank": trial.rank,
             "error": trial.error} for trial in within]
        measured = measure(name, [conv] + [pairs[trial.rank] for trial in within], example, labels)
        for backend, ratios in measured.items():
            for trial, ratio in zip(within, ratios):
                trial.ratios[backend] = ratio
    chosen, reason = choose_rank(trials, rule)
    if chosen is None:
        return LayerChoice(name, method, low_rank.full_rank, macs, trials, None, reason)
    return LayerChoice(name, method, low_rank.full_rank, macs, trials, chosen.rank, reason, pairs[chosen.rank])


def _macs(module: nn.Module, example: torch.Tensor) -> int:
    return sum(layer_macs(module, example).values())
