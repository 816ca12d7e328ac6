"""``--latency-model layers``: the per-layer table's interpolation, how a layer's widths follow the
groups through the dependency graph (a residual block, whose coupled group sets both the input of
the next convolution and the output of the previous one), and the allocation on such a table."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edgebench.prune.allocate import allocate
from edgebench.prune.latency_kinds import model_from_dict
from edgebench.prune.latency_layers import uniform_cuts
from edgebench.prune.latency_model import LatencyModel
from edgebench.prune.layer_shapes import traced_layers
from edgebench.prune.layer_table import Dim, LayerEntry, LayerTable
from edgebench.prune.surgery import build_graph
from edgebench.prune.zero_pad import prunable_units, residual_branches

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_residual import tiny_resnet  # noqa: E402


def bilinear(cin, cout):
    """A function bilinear interpolation reproduces exactly between its grid points."""
    return 0.01 + 0.002 * cin + 0.003 * cout + 0.0004 * cin * cout


def test_a_two_dimensional_table_interpolates_bilinearly_and_never_extrapolates():
    axes = ((8, 16, 32), (8, 24))
    values = np.array([[bilinear(a, b) for b in axes[1]] for a in axes[0]])
    entry = LayerEntry("conv", (Dim(32, (("g", 32, 32),)), Dim(24, (("h", 24, 24),))), axes, values)
    assert entry.value({}) == pytest.approx(bilinear(32, 24))  # every group at full width
    assert entry.value({"g": 12, "h": 20}) == pytest.approx(bilinear(12, 20))
    assert entry.value({"g": 16, "h": 8}) == pytest.approx(bilinear(16, 8))  # on a measured point
    queries = [np.array([10.0, 30.0]), np.array([9.0, 23.0])]
    assert entry.values_at(queries) == pytest.approx([bilinear(10, 9), bilinear(30, 23)])
    with pytest.raises(ValueError, match="outside the measured 8..32"):
        entry.value({"g": 7})
    # Not bilinear between points (a product of squares): interpolated, not the function itself.
    curved = LayerEntry("c", (Dim(32, (("g", 32, 32),)),), ((8, 32),), np.array([1.0, 16.0]))
    assert curved.value({"g": 16}) == pytest.approx(1.0 + 15.0 * 8 / 24)


def test_a_dimension_follows_every_group_that_cuts_it_and_is_measured_at_their_shares():
    # 64 inputs: 32 from group a (a concatenation) and, after a flatten of 2 positions, 16 channels of b.
    dim = Dim(64, (("a", 32, 32), ("b", 32, 16)))
    assert dim.at({}) == 64 and dim.at({"a": 16}) == 48 and dim.at({"a": 16, "b": 8}) == 32
    # A quarter, a half, three quarters (aligned down to 8, at least 8) and all: a at 8, 16, 24, 32,
    # b at 8, 8, 8, 16, two positions each.
    assert dim.grid(8) == [8 + 16, 16 + 16, 24 + 16, 64]
    assert Dim(3).grid(8) == [3]  # no group cuts the image's channels


def resnet_calls():
    model = tiny_resnet()
    graph = build_graph(model, torch.randn(2, 3, 16, 16))
    return graph, {call.name: call for call in traced_layers(model, graph.groups, graph.dependencies,
                                                            graph.example_input)}


def test_the_residual_groups_set_the_widths_of_the_layers_on_both_sides_of_the_addition():
    graph, calls = resnet_calls()
    assert set(graph.groups) == {"0", "3.conv1", "4.conv1", "4.downsample.0"}
    assert list(calls) == ["0", "3.conv1", "3.conv2", "4.conv1", "4.conv2", "4.downsample.0", "7"]

    def parts(name):
        return [[part[0] for part in dim.parts] for dim in calls[name].dims]

    # The stage's coupled group (named by the stem) cuts the stem's and the block's last outputs
    # and the inputs of everything reading the stage.
    assert parts("0") == [[], ["0"]] and calls["0"].dims[0].full == 3
    assert parts("3.conv1") == [["0"], ["3.conv1"]]
    assert parts("3.conv2") == [["3.conv1"], ["0"]]
    assert parts("4.conv1") == [["0"], ["4.conv1"]] and parts("4.downsample.0") == [["0"], ["4.downsample.0"]]
    # The downsampling block's output, its projection's group, feeds the classifier, which keeps 10 outputs.
    assert parts("4.conv2") == [["4.conv1"], ["4.downsample.0"]]
    assert parts("7") == [["4.downsample.0"], []] and calls["7"].dims[1].full == 10
    # Each layer's real input: the stride-2 block halves the positions.
    assert calls["4.conv1"].input_shape == (16, 16, 16) and calls["4.conv2"].input_shape == (32, 8, 8)
    assert calls["7"].input_shape == (32,)
    widths = {"0": 8, "3.conv1": 16, "4.conv1": 24, "4.downsample.0": 16}
    assert [calls["3.conv1"].dims[0].at(widths), calls["3.conv2"].dims[1].at(widths)] == [8, 8]
    # The one-layer model at a pair of widths, and the same key for the block's two equal convolutions.
    module, shape = calls["4.conv1"].module((8, 24))
    assert (module.in_channels, module.out_channels, module.stride, shape) == (8, 24, (2, 2), (8, 16, 16))
    assert calls["3.conv1"].key((8, 16)) == calls["3.conv2"].key((8, 16))
    assert calls["3.conv1"].key((8, 16)) != calls["4.conv1"].key((8, 16))
    # --residual zero-pad: the identity block's last convolution is cut alone, its readers are not.
    branches = residual_branches(graph)
    padded = {call.name: call for call in traced_layers(graph.model, prunable_units(graph, branches),
                                                        graph.dependencies, graph.example_input)}
    assert list(branches) == ["3.conv2", "4.conv2"]
    assert [[part[0] for part in dim.parts] for dim in padded["3.conv2"].dims] == [["3.conv1"], ["3.conv2"]]
    assert [[part[0] for part in dim.parts] for dim in padded["4.conv1"].dims] == [[], ["4.conv1"]]


def macs_table(calls, graph) -> LayerTable:
    """A table whose values are the layers' multiply-accumulates in millions, calibrated by the
    whole model cut to a quarter at 0.3 (the rest is not layers) and to a half at 0.5."""
    layers = []
    for call in calls.values():
        axes = tuple(tuple(dim.grid(8)) for dim in call.dims)
        positions = int(np.prod(call.input_shape[1:])) if call.kind != "linear" else 1
        values = np.array([[a * b * positions / 1e6 for b in axes[1]] for a in axes[0]])
        layers.append(LayerEntry(call.name, call.dims, axes, values))
    full = {group: graph.width(group) for group in graph.groups}
    table = LayerTable("onnxruntime", 1.0, tuple(layers), full, 8)
    cuts = [({group: width // 4 if width > 16 else 8 for group, width in full.items()}, 0.3),
            ({group: width // 2 for group, width in full.items()}, 0.5)]
    return dataclasses.replace(table, calibration=tuple({"widths": cut, "table": table.layer_sum(cut), "measured": ratio}
                                                        for cut, ratio in cuts))


def test_the_table_predicts_the_full_model_as_1_and_a_narrower_one_from_its_layers():
    graph, calls = resnet_calls()
    table = macs_table(calls, graph)
    full = {group: graph.width(group) for group in graph.groups}
    assert table.predict({}) == pytest.approx(1.0) and table.predict(full) == pytest.approx(1.0)
    # On the calibration points, what was measured; between them, on the line through them.
    quarter, half = (point["widths"] for point in table.calibration)
    assert table.predict(quarter) == pytest.approx(0.3) and table.predict(half) == pytest.approx(0.5)
    between = {**half, "4.conv1": 24}
    share = (table.layer_sum(between) - table.layer_sum(half)) / (table.layer_sum({}) - table.layer_sum(half))
    assert 0 < share < 1 and table.predict(between) == pytest.approx(0.5 + 0.5 * share)
    # One group's candidates, looked up for its layers only, agree with the whole prediction.
    candidates = [8, 16, 24, 32]
    each = table.predict_each(half, "4.conv1", candidates)
    assert each == pytest.approx([table.predict({**half, "4.conv1": c}) for c in candidates])
    assert table.narrowest("0", 16) == 8 and table.narrowest("4.conv1", 32) == 8 and table.narrowest("x", 5) == 5
    assert model_from_dict(json.loads(json.dumps(table.as_dict()))) == table
    summary = table.summary()
    assert {key: summary[key] for key in ("kind", "layers", "groups", "cells")} == {
        "kind": "layers", "layers": 7, "groups": 4, "cells": 2 + 4 + 4 + 8 + 16 + 8 + 4}
    assert summary["calibration"] == [[point["table"], 0.3 if point["widths"] == quarter else 0.5]
                                      for point in table.calibration]
    # A cached entry of an older version, without a kind, is a group model.
    assert isinstance(model_from_dict({"backend": "eager", "baseline_ms": 1.0, "curves": {}}), LatencyModel)


def test_the_whole_model_is_read_off_the_calibration_line_never_beyond_it():
    graph, calls = resnet_calls()
    table = macs_table(calls, graph)
    low, high, full = table.calibration[0]["table"], table.calibration[1]["table"], table.layer_sum({})
    assert table.whole(np.array([low - 1.0, low, (low + high) / 2, high, full, full + 1.0])) == pytest.approx(
        [0.3, 0.3, 0.4, 0.5, 1.0, 1.0])
    # A cut the tables say saves nothing is left off the line: the full model stays at 1.
    flat = dataclasses.replace(table, calibration=({"widths": {}, "table": full, "measured": 0.8},))
    assert flat.predict({}) == 1.0
    # Nothing to calibrate against (no group can be cut): every configuration is the full model.
    assert dataclasses.replace(table, calibration=()).predict(table.calibration[1]["widths"]) == 1.0
    full_widths = {group: graph.width(group) for group in graph.groups}
    # Groups of 16 and 32 at a quarter, a half, three quarters, aligned to 8 (never below 8).
    assert uniform_cuts(full_widths, 8) == [{"0": 8, "3.conv1": 8, "4.conv1": 8, "4.downsample.0": 8},
                                            {"0": 8, "3.conv1": 8, "4.conv1": 16, "4.downsample.0": 16},
                                            {"0": 8, "3.conv1": 8, "4.conv1": 24, "4.downsample.0": 24}]
    assert uniform_cuts({"a": 8, "b": 8}, 8) == []


def test_the_knapsack_allocates_on_a_layer_table_through_the_same_interface():
    graph, calls = resnet_calls()
    table = macs_table(calls, graph)
    # Group 0's channels nearly worthless, the others' all alike.
    scores = {group: [0.01] * graph.width(group) if group == "0" else [1.0] * graph.width(group)
              for group in graph.groups}
    allocation = allocate(scores, {"onnxruntime": table}, {"onnxruntime": 0.7}, 8)
    assert allocation.reached and allocation.predicted["onnxruntime"] <= 0.7
    assert allocation.predicted["onnxruntime"] == pytest.approx(table.predict(allocation.widths))
    assert allocation.widths["0"] == 8  # the cheapest importance goes first, down to the table's edge
    assert all(width % 8 == 0 and table.narrowest(group, graph.width(group)) <= width
               for group, width in allocation.widths.items())
