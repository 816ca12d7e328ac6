"""``--latency-model layers`` learned for real: every layer of a tiny network measured as one-layer
models against the whole network in paired ONNX Runtime worker runs, held out and cached like the
group model. No assertion on how accurate it is: the machine may be loaded. (How the layers' widths
follow the groups of a residual network: ``test_layer_table.py``.)"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgebench.prune import latency_cache
from edgebench.prune.baseline import saved_model
from edgebench.prune.latency_layers import LayerFit
from edgebench.prune.latency_probe import HELD_OUT, LatencyProbe
from edgebench.prune.layer_shapes import traced_layers
from edgebench.prune.layer_table import LayerTable
from edgebench.prune.surgery import build_graph, cut
from edgebench.sweep.paired import Pairing, measure_paired

from local_sweep import local_sweep

FAST = Pairing(rounds=3, block_s=0.01, warmup_s=0.02)
SIDE = 32
SHAPE = f"3x{SIDE}x{SIDE}"


@pytest.fixture
def sweep():
    return local_sweep("run-layers", timeout_s=300)


def tiny_net() -> nn.Sequential:
    """Two convolutions and a classifier, of torch's own classes (the worker unpickles it)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)).eval()


def test_every_layer_gets_a_table_and_the_full_model_predicts_1(sweep, tmp_path):
    # At 32x32 the second convolution's work, not a call's overhead, sets its latency: at 16x16 the
    # half-width layers measured no cheaper than the full ones on a busy machine, now and then.
    model = tiny_net()
    graph = build_graph(model, torch.randn(1, 3, SIDE, SIDE))
    full = {group: graph.width(group) for group in graph.groups}
    calls = traced_layers(model, graph.groups, graph.dependencies, graph.example_input)
    baseline = saved_model(model, tmp_path / "baseline.pt", SHAPE, "tiny_resnet", None)
    numbers = itertools.count(1)

    def build(widths):  # a held-out configuration: each group's first channels removed
        drops = {group: list(range(full[group] - width)) for group, width in widths.items() if width < full[group]}
        return saved_model(cut(graph, drops)[0], tmp_path / f"cut-{next(numbers)}.pt", SHAPE, "cut", None)

    records, lines = [], []
    key = latency_cache.latency_key(sweep, "onnxruntime", "sha256:tiny", None, SHAPE, 8, "coupled", "layers")
    probe = LatencyProbe(sweep, ["onnxruntime"], FAST, 8, records.extend, lines.append)
    learned = probe.learn(baseline, full, build, {"onnxruntime": key}, LayerFit(tuple(calls), tmp_path, 8))
    table = learned["onnxruntime"].model
    assert isinstance(table, LayerTable) and not learned["onnxruntime"].cached
    # Every prunable layer of the network, each with a value at every point of its grid.
    assert [layer.name for layer in table.layers] == ["0", "2", "6"]
    for layer in table.layers:
        assert layer.values.shape == tuple(len(axis) for axis in layer.axes) and np.isfinite(layer.values).all()
    assert table.predict(full) == pytest.approx(1.0, abs=1e-9)
    assert table.predict({group: width // 2 for group, width in full.items()}) < 1.0
    assert table.baseline_ms > 0
    # Both groups (16 channels) at 8 and 16: the first convolution at 2 widths, the second at 2 x 2,
    # the classifier at 2, with the whole model cut to 8 and 8 (every share aligns to 8) against
    # the full one; then the held-out configurations against the full model.
    probes = [r.env["prune"] for r in records if r.env["prune"]["role"] == "latency probe"]
    assert sum(1 for label in probes if "layer_widths" in label) == 8
    assert [label["widths"] for label in probes if label.get("calibration")] == [{"0": 8, "2": 8}]
    assert sum(1 for label in probes if "widths" in label and not label.get("calibration")) == HELD_OUT
    [point] = table.calibration
    assert point["widths"] == {"0": 8, "2": 8} and point["measured"] > 0 and point["table"] > 0
    # Through the full model and the uniform cut: the one calibration point is predicted exactly.
    assert table.predict(point["widths"]) == pytest.approx(point["measured"])
    report = learned["onnxruntime"].report()
    assert report["kind"] == "layers" and report["cells"] == 8 and report["layers"] == 3 and report["groups"] == 2
    assert len(report["held_out"]) == HELD_OUT and all(item["predicted"] > 0 for item in report["held_out"])
    assert report["held_out_mean_abs_error"] >= 0
    assert not list(tmp_path.glob("layer-*.pt"))  # the one-layer models are thrown away
    # Long learning shows progress: a line after each paired run, the last one counting them all.
    progress = [line for line in lines if "one-layer models measured" in line]
    assert progress and progress[-1].startswith("latency model: 8 of 8 one-layer models measured")

    def nothing_to_build(widths):
        raise AssertionError("a cached table needs no measurement")

    again = LatencyProbe(sweep, ["onnxruntime"], FAST, 8, records.extend, lines.append)
    cached = again.learn(baseline, full, nothing_to_build, {"onnxruntime": key}, LayerFit(tuple(calls), tmp_path, 8))
    assert cached["onnxruntime"].cached and cached["onnxruntime"].model == table


def test_models_of_different_input_shapes_alternate_in_one_paired_run(sweep, tmp_path):
    # The full model on an image, one-layer models on their own inputs: each bound to its own.
    net = saved_model(tiny_net(), tmp_path / "net.pt", "3x16x16", "net", None)
    wide = saved_model(nn.Conv2d(16, 16, 3, padding=1), tmp_path / "wide.pt", "16x16x16", "wide", None)
    linear = saved_model(nn.Linear(16, 10), tmp_path / "linear.pt", "16", "linear", None)
    paired = measure_paired(sweep, [net, wide, linear], "eager", FAST)
    assert [entry.status for entry in paired.entries] == ["ok", "ok", "ok"], [e.error for e in paired.entries]
    assert all(len(entry.blocks) == FAST.rounds for entry in paired.entries)
    assert [entry.record.input_shape for entry in paired.entries] == ["3x16x16", "16x16x16", "16"]


@pytest.mark.parametrize("layer, shape", [(nn.Conv2d(24, 48, 3, stride=2, padding=1), (24, 8, 8)),
                                          (nn.Conv2d(32, 32, 3, padding=1, groups=32), (32, 8, 8)),
                                          (nn.Linear(64, 10), (64,))], ids=["conv", "depthwise", "linear"])
def test_a_probe_exports_with_the_legacy_exporter_to_the_node_torch_export_makes(tmp_path, layer, shape):
    import onnx
    from edgebench.models.artifacts import onnx_for

    def nodes(path: Path) -> list:
        """Each node's type and attributes, the defaults the legacy exporter leaves out dropped."""
        defaults = [("auto_pad", b"NOTSET"), ("transA", 0)]
        return [(node.op_type, sorted(attribute for attribute in ((a.name, onnx.helper.get_attribute_value(a))
                                                                  for a in node.attribute)
                                      if attribute not in defaults))
                for node in onnx.load(str(path)).graph.node]

    fit = LayerFit((), tmp_path, 8)
    probe = fit._save(layer.eval(), shape, "layer", 1)
    plain = dataclasses.replace(probe, recipe={key: value for key, value in probe.recipe.items() if key != "exporter"})
    legacy, dynamo = onnx_for(probe, 1, tmp_path / "cache"), onnx_for(plain, 1, tmp_path / "cache")
    # The same file, so the same fingerprint: the exporter keeps the two exports apart in the cache.
    assert legacy != dynamo
    assert json_of(legacy)["exporter"].startswith("legacy") and json_of(dynamo)["exporter"] == "dynamo"
    assert nodes(legacy) == nodes(dynamo) and len(nodes(legacy)) == 1


def json_of(onnx_path: Path) -> dict:
    import json
    return json.loads(onnx_path.with_suffix(".json").read_text())
