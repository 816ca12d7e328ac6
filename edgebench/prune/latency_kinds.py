"""The kinds of latency model ``--latency-model`` chooses from, and what the allocation asks of one.

- ``layers`` (``layer_table.LayerTable``): HALP's per-layer lookup table, every prunable layer
  measured as a one-layer model at a grid of its input and output widths; a configuration's
  layer sum is mapped to the whole model's ratio through uniform cuts of the whole model.
- ``groups`` (``latency_model.LatencyModel``): each group measured alone at a few widths, as the
  whole model with that group cut; a configuration's ratio is the product of the groups' ratios.

``layers`` is the default, provisionally. The group model's product must guess how cuts of two
neighbouring groups combine in the convolution between them (exact for a chain of convolutions
only) and multiplies every probe's noise; its held-out error on ResNet-18 was 66% on ONNX Runtime
and 70% eager, in opposite directions (``docs/benchmarks.md``). The table sums what each layer
costs at both of its widths and is tied to whole-model measurements at full width and at uniform
cuts. In smoke runs on a loaded 2-core machine (3 rounds of 0.02 s blocks) its held-out error on
ResNet-18 was below the group model's on eager and below the group model's published error on
ONNX Runtime, but the same configurations measured up to half again apart from one run to the next
there, so that is no measurement; on a two-convolution chain the group model, exact there, was
closer. ``benchmarks/allocate_vs_uniform.py --latency-model layers,groups`` measures both; the
default should follow it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from edgebench.prune.layer_table import LayerTable
from edgebench.prune.latency_model import LatencyModel

KINDS = {"layers": LayerTable, "groups": LatencyModel}
DEFAULT_KIND = "layers"


class LatencyPredictor(Protocol):
    """What the allocation (``edgebench.prune.allocate``) and the probe's report ask of a model."""

    backend: str
    baseline_ms: float
    kind: str

    def narrowest(self, group: str, full: int) -> int:
        """The narrowest width of ``group`` (``full`` channels) the model predicts for."""

    def predict(self, widths: Mapping[str, int]) -> float:
        """The latency ratio to the full model with each group at ``widths`` (others full)."""

    def predict_each(self, widths: Mapping[str, int], group: str, candidates: Sequence[int]) -> np.ndarray:
        """``predict`` with ``group`` at each of ``candidates`` and the rest at ``widths``."""

    def summary(self) -> dict[str, Any]:
        """Its size, for the report."""

    def as_dict(self) -> dict[str, Any]:
        """For the cache; ``model_from_dict`` reads it back."""


def model_from_dict(data: Mapping[str, Any]) -> LatencyPredictor:
    """A cached model of either kind (an entry without a kind is a group model)."""
    return KINDS[data.get("kind", "groups")].from_dict(data)
