"""The search space: one keep ratio per prunable group, snapped to the widths a cut can have.

A ratio in ``[min_keep, 1]`` becomes a kept channel count the way ``--strategy static --ratio``
cuts (``edgebench.prune.static.ratio_keep``: rounded up to a multiple of ``--round-to``, never
above the group's width). Many ratios give one width, so the genetic search snaps its variables to
the ratio the width realises (``SnapToWidths``, a pymoo repair): two individuals that build the
same model have the same variables, and pymoo's duplicate elimination sees them as one.

The first generation (``UniformCutsFirst``) is half uniform cuts, every group at one keep ratio,
and half random ratios.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling
from pymoo.operators.sampling.rnd import FloatRandomSampling

from edgebench.prune.static import ratio_cut, ratio_keep

Widths = tuple[int, ...]  # every group's kept channel count, in the space's group order


@dataclass(frozen=True)
class Space:
    """Each prunable group's full width (in the graph's group order), the narrowest share a group may keep and
    the alignment of kept counts."""

    widths: dict[str, int]
    min_keep: float
    round_to: int

    @property
    def groups(self) -> list[str]:
        return list(self.widths)

    def kept(self, ratios: np.ndarray) -> Widths:
        """The kept channel count of every group at these keep ratios."""
        return tuple(ratio_keep(width, 1.0 - float(ratio), self.round_to)
                     for width, ratio in zip(self.widths.values(), ratios))

    def ratios(self, kept: Widths) -> np.ndarray:
        """The keep ratios that ``kept`` realises (``kept(ratios(w)) == w``)."""
        return np.array([count / width for count, width in zip(kept, self.widths.values())])

    def snap(self, ratios: np.ndarray) -> np.ndarray:
        return self.ratios(self.kept(ratios))

    def drops(self, kept: Widths, scores: dict[str, torch.Tensor]) -> dict[str, list[int]]:
        """The channels each group loses to keep ``kept``: its lowest-scoring ones (``ratio_cut``)."""
        drops: dict[str, list[int]] = {}
        for group, ratio in zip(self.groups, self.ratios(kept)):
            drops.update(ratio_cut({group: scores[group]}, 1.0 - ratio, self.round_to))
        return drops


class SnapToWidths(Repair):
    """pymoo's repair step: every new individual's ratios snapped to the widths they build."""

    def __init__(self, space: Space):
        super().__init__()
        self.space = space

    def _do(self, problem, X, **kwargs):
        return np.array([self.space.snap(x) for x in X])


class UniformCutsFirst(Sampling):
    """pymoo's first generation: half of it uniform cuts, every group kept at one ratio, the ratios
    evenly spaced from ``min_keep`` (the lowest bound) up; the rest uniformly random. Random ratios
    in ``[min_keep, 1]`` keep (1 + min_keep) / 2 of every group on average, and searches started
    from them alone stayed above the uniform cuts' region for all their generations (ResNet-18:
    no individual under 0.37x of the baseline's MACs, against 0.27x for half of every group cut)."""

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        uniform = n_samples // 2
        low, high = problem.bounds()
        shares = np.arange(uniform)[:, None] / max(uniform, 1)
        cuts = low + (high - low) * shares  # row i: every group at min_keep + (1 - min_keep) * i / uniform
        rest = FloatRandomSampling()._do(problem, n_samples - uniform, random_state=random_state)
        return np.vstack([cuts, rest])
