"""A latency model learned on the target: each prunable group's latency against its width.

Each group is measured at a few narrower widths (``probe_widths``: a quarter, a half and three
quarters of its width, aligned to ``--round-to``), each as the whole model with only that group
cut, paired against the full model on the target (``edgebench.prune.latency_probe``). A group's
curve is its measured latency ratios to the full model, with the full width at 1.

The model multiplies: a configuration's predicted latency, as a ratio to the full model's, is the
product of each group's ratio at its width (a sum of logarithms, which the allocation adds up). A
convolution's cost is the product of its input and output widths, which two neighbouring groups
set, so cutting both saves a product, not a sum: adding the changes counted that layer's saving
twice and predicted far too fast a model once every group is cut, where the product is exact for
such a chain. A layer one group alone drives (a depthwise convolution) makes the product err
on the slow side. Between measured widths a group's ratio is interpolated linearly. Latency falls in steps as channels go (kernels work in blocks of channels), and three
widths cannot say where the steps are; a straight line between measured points assumes no step
shape, passes through every measurement, and turns into the staircase as more widths are measured.
Below a group's narrowest measured width nothing is predicted: the allocation stops there.

The model only screens; the pruner measures what it chooses (``edgebench.prune.allocate``) and
reports the model's error against that measurement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgebench.prune.surgery import aligned_width

# The probed widths, as shares of a group's width; with the full width, four points per curve.
PROBE_SHARES = (0.25, 0.5, 0.75)


def probe_widths(width: int, round_to: int) -> list[int]:
    """The narrower widths a group of ``width`` channels is measured at, aligned and ascending."""
    return sorted({share_width(width, share, round_to) for share in PROBE_SHARES} - {width})


def share_width(width: int, share: float, round_to: int) -> int:
    """``share`` of a group of ``width`` channels, aligned to ``round_to`` and at most ``width``."""
    return min(width, aligned_width(math.ceil(width * share), round_to))


@dataclass(frozen=True)
class Point:
    """One measured width: the whole model's latency over the full model's, with its 95% interval."""

    width: int
    ratio: float
    low: float
    high: float


@dataclass(frozen=True)
class GroupCurve:
    """A group's latency ratio against its width; ``points`` ascending, the full width last."""

    width: int
    points: tuple[Point, ...]

    @classmethod
    def of(cls, width: int, measured: list[Point]) -> "GroupCurve":
        return cls(width, tuple(sorted(measured, key=lambda point: point.width)) + (Point(width, 1.0, 1.0, 1.0),))

    @property
    def narrowest(self) -> int:
        return self.points[0].width

    def log_ratio(self, width: int) -> float:
        """The logarithm of the latency ratio with the group cut to ``width`` (negative: faster)."""
        return float(self.log_ratios(np.array([width]))[0])

    def log_ratios(self, widths: np.ndarray) -> np.ndarray:
        if np.any(widths < self.narrowest) or np.any(widths > self.width):
            shown = widths[0] if len(widths) == 1 else f"{widths.min()}..{widths.max()}"
            raise ValueError(f"width {shown} is outside the measured {self.narrowest}..{self.width}")
        return np.log(np.interp(widths, [p.width for p in self.points], [p.ratio for p in self.points]))


@dataclass(frozen=True)
class LatencyModel:
    """One backend's model: the full model's latency and each group's curve."""

    backend: str
    baseline_ms: float
    curves: dict[str, GroupCurve]

    kind = "groups"

    def narrowest(self, group: str, full: int) -> int:
        """The narrowest width of ``group`` (``full`` channels) the model predicts for."""
        return self.curves[group].narrowest if group in self.curves else full

    def predict(self, widths: Mapping[str, int]) -> float:
        """The latency ratio to the full model of the model with each group at ``widths`` (a group
        left out keeps its full width)."""
        return math.exp(sum(curve.log_ratio(widths.get(group, curve.width)) for group, curve in self.curves.items()))

    def predict_each(self, widths: Mapping[str, int], group: str, candidates: Sequence[int]) -> np.ndarray:
        """``predict`` with ``group`` at each of ``candidates`` and the rest at ``widths``."""
        if group not in self.curves:
            return np.full(len(candidates), self.predict(widths))
        curve = self.curves[group]
        rest = math.log(self.predict(widths)) - curve.log_ratio(widths.get(group, curve.width))
        return np.exp(rest + curve.log_ratios(np.asarray(candidates)))

    def summary(self) -> dict[str, Any]:
        """What the probe's report says of it."""
        return {"kind": self.kind, "groups": sum(1 for curve in self.curves.values() if curve.narrowest < curve.width),
                "probes": sum(len(curve.points) - 1 for curve in self.curves.values())}

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "backend": self.backend, "baseline_ms": self.baseline_ms,
                "curves": {group: {"width": curve.width,
                                   "points": [[p.width, p.ratio, p.low, p.high] for p in curve.points[:-1]]}
                           for group, curve in self.curves.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LatencyModel":
        return cls(str(data["backend"]), float(data["baseline_ms"]),
                   {group: GroupCurve.of(int(curve["width"]), [Point(int(w), float(r), float(lo), float(hi))
                                                               for w, r, lo, hi in curve["points"]])
                    for group, curve in data["curves"].items()})
