"""A per-layer latency lookup table, HALP's (Shen et al., NeurIPS 2022), learned on the target:
``--latency-model layers``.

Every prunable convolution and linear layer (every call of it, for a layer a forward runs more
than once) has a table of its latency against its input and output widths, measured as a
one-layer model (``edgebench.prune.latency_layers``); a depthwise convolution, whose input and
output are one width, has a one-dimensional table. A configuration's layer sum is every layer's
table at the widths the configuration gives it, interpolated bilinearly between measured widths,
summed: a convolution's cost is set by both of its widths, which two groups (a group and the next
one) can set, and the sum of layers says so where a model of groups alone (``latency_model``)
must guess how the groups combine.

A layer alone is not a layer in its network: it pays a call of its own, binding its input and
allocating its output, and ONNX Runtime may convert its input and output to and from a blocked
layout around it, where the network converts once. So the layer sum is not the whole model's
latency, nor is it off by a constant or a factor: on a tiny network one convolution alone measured
slower than the whole network, and on ResNet-18 with ONNX Runtime the whole model cut uniformly saved more than a
fixed multiple of what its layers alone saved, the more so the deeper the cut. The layer sum ranks
configurations; the whole model measured at full width and cut uniformly (every group at each
probed share) maps it to a ratio: a configuration's predicted ratio is read off the line through
those points at its layer sum (``whole``). The full configuration is exactly 1; what no table
holds (the stem's image input, pooling, heads' fixed widths, element-wise operations) is in the
whole model's measurements. Everything is in units of the full model's latency (each one-layer
model's latency over the full model's, in the same paired run).

A layer's width in a configuration follows from the groups' widths through the dependency graph
(``layer_shapes``): ``full - sum over the groups that cut it of count * (group width - kept) /
group width``, ``count`` being how many of the layer's channels the group holds (a group's width
for a convolution it feeds, that width times the spatial positions for a linear layer after a
flatten, the group's share of a concatenation). Each dimension is measured where every group
that sets it is at a quarter, a half, three quarters (``PROBE_SHARES``, aligned to
``--round-to``) and all of its width, so four points per dimension and sixteen per convolution;
a group is never cut below its quarter, where no table reaches.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgebench.prune.latency_model import PROBE_SHARES, probe_widths, share_width

# Past the ends of a table by at most this much: still inside (its widths are rounded to whole
# channels, a layer's width in a configuration need not be).
EDGE_TOLERANCE = 0.5


@dataclass(frozen=True)
class Dim:
    """One dimension of a layer (its input or output channels, or features): the width at full
    size and, per group that cuts it, how many of its channels that group holds and the group's
    full width."""

    full: int
    parts: tuple[tuple[str, int, int], ...] = ()  # (group, count, group width)

    def at(self, widths: Mapping[str, int]) -> float:
        """The width with each group at ``widths`` (a group left out keeps its full width)."""
        return self.full - sum(count * (width - widths.get(group, width)) / width for group, count, width in self.parts)

    def grid(self, round_to: int) -> list[int]:
        """The widths it is measured at: every group that cuts it at each probed share and at
        full width; ascending, one point when no group cuts it."""
        points = {round(self.at({group: share_width(width, share, round_to) for group, _, width in self.parts}))
                  for share in PROBE_SHARES}
        return sorted(points | {self.full})


def narrowest(width: int, round_to: int) -> int:
    """The narrowest width a group of ``width`` channels is cut to: the first probed share, where
    the tables start (the group model's narrowest too, so both search the same widths)."""
    return (probe_widths(width, round_to) or [width])[0]


@dataclass(frozen=True)
class LayerEntry:
    """One layer call's table: ``axes`` the measured widths of each dimension (one for a depthwise
    convolution, input then output otherwise), ``values`` its latency there, over the full
    model's."""

    name: str
    dims: tuple[Dim, ...]
    axes: tuple[tuple[int, ...], ...]
    values: np.ndarray

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, LayerEntry) and (self.name, self.dims, self.axes) == (other.name, other.dims, other.axes)
                and np.array_equal(self.values, other.values))

    def value(self, widths: Mapping[str, int]) -> float:
        return float(self.values_at([np.array([dim.at(widths)]) for dim in self.dims])[0])

    def values_at(self, queries: Sequence[np.ndarray]) -> np.ndarray:
        """Interpolated (bilinearly for two dimensions) at ``queries``, one array of widths per
        dimension; ValueError outside the measured widths (no extrapolation)."""
        weights = [_locate(np.asarray(axis, dtype=float), query, self.name) for axis, query in zip(self.axes, queries)]
        if len(weights) == 1:
            (low, high, t), = weights
            return (1 - t) * self.values[low] + t * self.values[high]
        (low_in, high_in, s), (low_out, high_out, t) = weights
        return ((1 - s) * (1 - t) * self.values[low_in, low_out] + (1 - s) * t * self.values[low_in, high_out]
                + s * (1 - t) * self.values[high_in, low_out] + s * t * self.values[high_in, high_out])


def _locate(axis: np.ndarray, query: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query, the measured points either side and the weight of the upper one."""
    if np.any(query < axis[0] - EDGE_TOLERANCE) or np.any(query > axis[-1] + EDGE_TOLERANCE):
        raise ValueError(f"{name}: width {query.min():g}..{query.max():g} is outside the measured "
                         f"{axis[0]:g}..{axis[-1]:g}")
    if len(axis) == 1:
        zero = np.zeros(len(query), dtype=int)
        return zero, zero, np.zeros(len(query))
    query = np.clip(query, axis[0], axis[-1])
    low = np.clip(np.searchsorted(axis, query, side="right") - 1, 0, len(axis) - 2)
    return low, low + 1, (query - axis[low]) / (axis[low + 1] - axis[low])


@dataclass(frozen=True)
class LayerTable:
    """One backend's table: the full model's latency and every layer call's table; ``widths``
    every group's full width, ``round_to`` how they are cut; ``calibration`` the whole model
    measured cut uniformly, which maps the layers' sum to the whole model's ratio."""

    backend: str
    baseline_ms: float
    layers: tuple[LayerEntry, ...]
    widths: dict[str, int]
    round_to: int
    calibration: tuple[dict[str, Any], ...] = ()  # {"widths", "table" (the layers' sum), "measured"}

    kind = "layers"

    def narrowest(self, group: str, full: int) -> int:
        """The narrowest width of ``group`` (``full`` channels) the tables reach."""
        return narrowest(self.widths[group], self.round_to) if group in self.widths else full

    def predict(self, widths: Mapping[str, int]) -> float:
        """The latency ratio to the full model of the model with each group at ``widths`` (a
        group left out keeps its full width)."""
        return float(self.whole(np.array([self.layer_sum(widths)]))[0])

    def layer_sum(self, widths: Mapping[str, int]) -> float:
        """The layers' tables summed at ``widths``."""
        return sum(layer.value(widths) for layer in self.layers)

    def whole(self, sums: np.ndarray) -> np.ndarray:
        """The whole model's ratio at layer sums ``sums``: linear between the calibration points
        and the full model (1), level beyond the outermost ones (never extrapolated)."""
        return np.interp(sums, *self._curve)

    @functools.cached_property
    def _curve(self) -> tuple[list[float], list[float]]:
        full = self.layer_sum({})
        # A cut the tables say saves nothing places nothing on the line (and would move the full model off 1).
        points = sorted([(point["table"], point["measured"]) for point in self.calibration if point["table"] < full]
                        + [(full, 1.0)])
        return [table for table, _ in points], [ratio for _, ratio in points]

    def predict_each(self, widths: Mapping[str, int], group: str, candidates: Sequence[int]) -> np.ndarray:
        """``predict`` with ``group`` at each of ``candidates`` and the rest at ``widths``: only
        the layers the group cuts are looked up again."""
        candidates = np.asarray(candidates, dtype=float)
        sums = np.full(len(candidates), self.layer_sum(widths))
        for layer in self._cut_by(group):
            queries = [np.array([dim.at(widths)]) if group not in {part[0] for part in dim.parts}
                       else dim.at({**widths, group: 0}) + _count(dim, group) * candidates / _width(dim, group)
                       for dim in layer.dims]
            sums += layer.values_at(queries) - layer.value(widths)
        return self.whole(sums)

    def _cut_by(self, group: str) -> list[LayerEntry]:
        return [layer for layer in self.layers if any(part[0] == group for dim in layer.dims for part in dim.parts)]

    def summary(self) -> dict[str, Any]:
        """What the probe's report says of it."""
        return {"kind": self.kind, "layers": len(self.layers), "cells": sum(layer.values.size for layer in self.layers),
                "calibration": [[point["table"], point["measured"]] for point in self.calibration],
                "full_sum": self.layer_sum({}),
                "groups": sum(1 for group, width in self.widths.items() if self.narrowest(group, width) < width)}

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "backend": self.backend, "baseline_ms": self.baseline_ms,
                "widths": self.widths, "round_to": self.round_to,
                "calibration": list(self.calibration),
                "layers": [{"name": layer.name, "dims": [[dim.full, [list(part) for part in dim.parts]]
                                                         for dim in layer.dims],
                            "axes": [list(axis) for axis in layer.axes], "values": layer.values.tolist()}
                           for layer in self.layers]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LayerTable":
        layers = tuple(LayerEntry(str(layer["name"]),
                                  tuple(Dim(int(full), tuple((str(g), int(c), int(w)) for g, c, w in parts))
                                        for full, parts in layer["dims"]),
                                  tuple(tuple(int(w) for w in axis) for axis in layer["axes"]),
                                  np.asarray(layer["values"], dtype=float))
                       for layer in data["layers"])
        return cls(str(data["backend"]), float(data["baseline_ms"]), layers, {str(group): int(width) for group, width in data["widths"].items()}, int(data["round_to"]),
                   tuple(data["calibration"]))


def _count(dim: Dim, group: str) -> int:
    return next(count for name, count, _ in dim.parts if name == group)


def _width(dim: Dim, group: str) -> int:
    return next(width for name, _, width in dim.parts if name == group)
