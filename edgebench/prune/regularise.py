"""Training before the static cut, with a group-sparsity regulariser (``--regularise group-norm``)
or without one (``--regularise none``, the same steps: the contrast).

Compression-aware training (Alvarez and Salzmann: learning the number of neurons, NeurIPS 2016;
compression-aware training, NeurIPS 2017): a group-sparsity penalty during training drives whole
filters towards zero, so removing them afterwards costs little. The penalty here is Torch-Pruning's
own, ``GroupNormPruner.regularize`` (DepGraph, Fang et al., CVPR 2023): after each backward pass it
adds ``strength x gamma x w`` to the gradient of every weight coupled to a channel (the output
filter, the consumers' input slices, the BatchNorm scale), with ``gamma`` from 1 for a group's
strongest channel (by group L2 norm) to 16 for its weakest, so the weak channels shrink fastest.
Its groups are the pruner's: the same root layers, the same kept layers (``surgery.build_graph``).

The training is the task's own fine-tuning loop, ``--reg-steps`` steps on a copy of the baseline;
the penalty goes in between its backward pass and its optimizer step (``tasks.after_backward``).
The static cut then scores and cuts the trained copy as it would the baseline, and the baseline
stays the reference every measurement and accuracy is compared with.

What the step in report.json records: the settings, and the group L2 norm of every channel (over
all its coupled weights) before and after the training, summed over the channels the cut removed
and over those it kept. The premise is that the removed channels' norm fell further than the kept
ones'. Choosing the lowest-scoring channels after training favours that by itself, which is what
``--regularise none`` at the same steps shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch_pruning as tp

from edgebench.prune.surgery import PRUNABLE_TYPES, Graph, quiet_torch_pruning
from edgebench.prune.tasks import Task, after_backward

REGULARISERS = ("group-norm", "none")
# Torch-Pruning's group-sparsity examples (reproduce/main.py --reg).
DEFAULT_STRENGTH = 5e-4
DEFAULT_STEPS = 200


@dataclass(frozen=True)
class PreCutTraining:
    """What the training before the cut did: its settings, how many optimizer steps the penalty
    went into, and every group's per-channel L2 norms before and after."""

    regulariser: str
    strength: Optional[float]  # None without a regulariser
    steps: int
    regularised_steps: int
    norms_before: dict[str, torch.Tensor]
    norms_after: dict[str, torch.Tensor]

    def shrinkage(self, drops: dict[str, list[int]]) -> tuple[Optional[float], Optional[float]]:
        """The summed norm after over before, of the channels ``drops`` removes and of the rest
        (None for a side with no channel or no norm)."""
        removed = {group: set(drop) for group, drop in drops.items()}
        sums = {"cut": [0.0, 0.0], "kept": [0.0, 0.0]}
        for group, before in self.norms_before.items():
            for channel, (old, new) in enumerate(zip(before.tolist(), self.norms_after[group].tolist())):
                side = sums["cut" if channel in removed.get(group, ()) else "kept"]
                side[0] += old
                side[1] += new
        return tuple(after / before if before > 0 else None for before, after in sums.values())

    def report(self, drops: dict[str, list[int]]) -> dict[str, Any]:
        """The step's record: settings, the norm summed per side and per group, and the shrinkage."""
        removed = {group: set(drop) for group, drop in drops.items()}
        groups = {}
        for group, before in self.norms_before.items():
            cut = [channel in removed.get(group, ()) for channel in range(len(before))]
            groups[group] = {side: {"channels": sum(1 for c in cut if c == is_cut),
                                    "norm_before": _summed(before, cut, is_cut),
                                    "norm_after": _summed(self.norms_after[group], cut, is_cut)}
                             for side, is_cut in (("cut", True), ("kept", False))}
        cut_shrink, kept_shrink = self.shrinkage(drops)
        return {"regulariser": self.regulariser, "strength": self.strength, "steps": self.steps,
                "regularised_steps": self.regularised_steps,
                "norm_after_over_before": {"cut": cut_shrink, "kept": kept_shrink}, "groups": groups}

    def warnings(self, drops: dict[str, list[int]]) -> list[str]:
        """What the report says when the regulariser did not do what it is for."""
        if self.regulariser != "group-norm":
            return []
        if not self.regularised_steps:
            return ["--regularise group-norm: the task's finetune took no torch.optim step, so the regulariser "
                    "never ran"]
        cut, kept = self.shrinkage(drops)
        if cut is not None and kept is not None and cut >= kept:
            return [f"--regularise group-norm: the cut channels' norm fell to {cut:.3f} of its value, no further "
                    f"than the kept channels' ({kept:.3f}); a higher --reg-strength or more --reg-steps may be needed"]
        return []


def _summed(norms: torch.Tensor, cut: list[bool], is_cut: bool) -> float:
    return float(sum(norm for norm, c in zip(norms.tolist(), cut) if c == is_cut))


def group_norms(groups: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Per group, each channel's L2 norm over every weight coupled to it (filters, consumers' input
    slices, BatchNorm scales): the quantity the regulariser shrinks. A group with no weights is left out."""
    squared = tp.importance.GroupMagnitudeImportance(p=2, group_reduction="sum", normalizer=None)
    norms = {}
    for group_id, group in groups.items():
        score = squared(group)
        if score is not None:
            norms[group_id] = score.detach().float().cpu().sqrt()
    return norms


def train_before_cut(graph: Graph, task: Task, regulariser: str, strength: float, steps: int) -> PreCutTraining:
    """Train ``graph.model`` in place for ``steps`` of the task's fine-tuning, with Torch-Pruning's
    group-norm penalty of ``strength`` added after every backward pass (``regulariser`` group-norm),
    or without it (none)."""
    if regulariser not in REGULARISERS:
        raise ValueError(f"unknown regulariser {regulariser!r}; known: {', '.join(REGULARISERS)}")
    model = graph.model
    before = group_norms(graph.groups)
    calls = [0]
    if regulariser == "group-norm":
        with quiet_torch_pruning():
            penalty = tp.pruner.GroupNormPruner(
                model, graph.example_input, importance=tp.importance.GroupMagnitudeImportance(p=2), reg=strength,
                ignored_layers=graph.kept_modules(), root_module_types=list(PRUNABLE_TYPES))

        def regularise() -> None:
            penalty.regularize(model)
            calls[0] += 1

        with after_backward(model, regularise):
            task.finetune(model, steps)
    else:
        task.finetune(model, steps)
    return PreCutTraining(regulariser, strength if regulariser == "group-norm" else None, steps, calls[0],
                          before, group_norms(graph.groups))
