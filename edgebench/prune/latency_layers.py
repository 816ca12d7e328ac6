"""Learning the ``layers`` latency table (``edgebench.prune.layer_table``) on the target.

Every layer call (``layer_shapes.traced_layers``) is measured as a one-layer model at every point
of its grid: the same kernel, stride, padding and groups, on an input of its real spatial size,
batch 1. Calls that make the same one-layer model (ResNet's repeated blocks) share one
measurement. The one-layer models alternate with the full model in paired worker runs of
``LAYERS_PER_RUN`` (``--rounds`` and ``--block-time`` as for candidates), each model on its own
input; so each is a ratio to the full model measured in the same run, which drift between runs
leaves alone, where absolute milliseconds from different runs would not be comparable.

The first run also holds the calibration (``LayerTable.whole``): the whole model with every group
at each probed share (``PROBE_SHARES``, aligned to ``--round-to``), built like the group model's
probes, whose measured ratios map a layer sum to the whole model's ratio.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from edgebench.errors import UsageError
from edgebench.models.artifacts import LEGACY
from edgebench.models.resolve import ResolvedModel
from edgebench.prune.baseline import saved_model
from edgebench.prune.latency_model import PROBE_SHARES, share_width
from edgebench.prune.layer_shapes import LayerCall
from edgebench.prune.layer_table import LayerEntry, LayerTable
from edgebench.sweep.paired import PairedMeasurement

# One-layer models per paired run besides the full one: enough to share a worker's start, few
# enough that a round (every model one block) stays short against drift.
LAYERS_PER_RUN = 48

#: ``LatencyProbe.measure``: the models some builders make, measured against the full model.
Measure = Callable[[ResolvedModel, Sequence[Callable[[], ResolvedModel]], Sequence[Mapping[str, Any]], list[str]],
                   dict[str, PairedMeasurement]]
#: Builds the whole model with each named group cut to its width, saved for the worker.
BuildModel = Callable[[Mapping[str, int]], ResolvedModel]


@dataclass(frozen=True)
class LayerFit:
    """What learning the table needs besides the probe: the model's layer calls, where the
    one-layer models are saved for the worker, and the alignment of the groups' widths."""

    calls: tuple[LayerCall, ...]
    workdir: Path
    round_to: int

    def fit(self, measure: Measure, baseline: ResolvedModel, widths: Mapping[str, int], build: BuildModel,
            backends: list[str], log: Callable[[str], None]) -> dict[str, LayerTable]:
        """Per backend, the table of every layer call, for groups of ``widths`` (full widths)."""
        grids = [tuple(tuple(dim.grid(self.round_to)) for dim in call.dims) for call in self.calls]
        probes: dict[tuple, tuple[LayerCall, tuple[int, ...]]] = {}
        for call, axes in zip(self.calls, grids):
            for point in itertools.product(*axes):
                probes.setdefault(call.key(point), (call, point))
        keys = list(probes)
        calibration = uniform_cuts(widths, self.round_to)
        log(f"latency model ({', '.join(backends)}): measuring {len(keys)} one-layer models of {len(self.calls)} "
            f"layer calls, {LAYERS_PER_RUN} per paired run, and {len(calibration)} uniform cuts of the whole model")
        numbers = itertools.count(1)
        costs: dict[str, dict[tuple, float]] = {backend: {} for backend in backends}
        measured: dict[str, list[float]] = {backend: [] for backend in backends}
        baseline_ms: dict[str, float] = {}
        started = time.monotonic()
        for first in range(0, len(keys), LAYERS_PER_RUN):
            batch = keys[first:first + LAYERS_PER_RUN]
            cuts = calibration if first == 0 else []
            builders: list[Callable[[], ResolvedModel]] = [functools.partial(build, cut) for cut in cuts]
            labels: list[dict[str, Any]] = [{"widths": dict(cut), "calibration": True} for cut in cuts]
            for key in batch:
                call, point = probes[key]
                builders.append(functools.partial(self._save, *call.module(point), call.name, next(numbers)))
                labels.append({"layer": call.name, "layer_widths": list(point)})
            for backend, paired in measure(baseline, builders, labels, backends).items():
                baseline_ms.setdefault(backend, paired.entries[0].p50_ms)
                ratios = [paired.ratio(index, 0) for index in range(1, len(builders) + 1)]
                for ratio, entry, label in zip(ratios, paired.entries[1:], labels):
                    if ratio is None:
                        what = (f"the one-layer model of {label['layer']} at {label['layer_widths']}"
                                if "layer" in label else f"the uniform cut {label['widths']}")
                        raise UsageError(f"{backend} cannot measure {what}: {entry.error}")
                measured[backend] += [ratio.ratio for ratio in ratios[:len(cuts)]]
                costs[backend].update((key, ratio.ratio) for key, ratio in zip(batch, ratios[len(cuts):]))
            log(f"latency model: {first + len(batch)} of {len(keys)} one-layer models measured "
                f"({time.monotonic() - started:.0f} s)")
        return {backend: self._table(backend, baseline_ms[backend], costs[backend], widths, grids,
                                     list(zip(calibration, measured[backend])))
                for backend in backends}

    def _save(self, module: nn.Module, input_shape: tuple[int, ...], name: str, number: int) -> ResolvedModel:
        resolved = saved_model(module, self.workdir / f"layer-{number:04d}.pt", "x".join(map(str, input_shape)),
                               f"{name} [one-layer latency probe]", None)
        # One Conv or Gemm node either way, with the same attributes; torch.export took about 1 s
        # a probe here against 0.01 s (the most of learning a table for ONNX Runtime).
        return dataclasses.replace(resolved, recipe={**resolved.recipe, "exporter": LEGACY})

    def _table(self, backend: str, baseline_ms: float, costs: Mapping[tuple, float], widths: Mapping[str, int],
               grids: Sequence[tuple[tuple[int, ...], ...]],
               calibration: Sequence[tuple[dict[str, int], float]]) -> LayerTable:
        layers = tuple(LayerEntry(call.name, call.dims, axes,
                                  np.array([costs[call.key(point)] for point in itertools.product(*axes)])
                                  .reshape([len(axis) for axis in axes]))
                       for call, axes in zip(self.calls, grids))
        table = LayerTable(backend, baseline_ms, layers, dict(widths), self.round_to)
        return dataclasses.replace(table, calibration=tuple(
            {"widths": cut, "table": table.layer_sum(cut), "measured": ratio} for cut, ratio in calibration))


def uniform_cuts(widths: Mapping[str, int], round_to: int) -> list[dict[str, int]]:
    """Every group at each probed share of its width (aligned, never wider than it): the distinct
    configurations that cut something."""
    cuts: list[dict[str, int]] = []
    for share in PROBE_SHARES:
        cut = {group: width for group, full in widths.items() if (width := share_width(full, share, round_to)) < full}
        if cut and cut not in cuts:
            cuts.append(cut)
    return cuts
