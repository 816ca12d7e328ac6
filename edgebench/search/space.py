"""The search space: one keep ratio per prunable group, snapped to the widths a cut can have.

A ratio in ``[min_keep, 1]`` becomes a kept channel count the way ``--strategy static --ratio``
cuts (``edgebench.prune.static.ratio_keep``: rounded up to a multiple of ``--round-to``, never
above the group's width). Many ratios give one width, so the genetic search snaps its variables to
the ratio the width realises (``SnapToWidths``, a pymoo repair): two individuals that build the
same model have the same variables, and pymoo's duplicate elimination sees them as one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pymoo.core.repair import Repair

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
