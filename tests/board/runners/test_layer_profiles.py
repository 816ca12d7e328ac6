"""Per-layer profiles on eager and ONNX Runtime: the shared row shape, module paths from ONNX
node names and metadata, the protobuf node reader, and real profiles of a small torchvision model."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
import torchvision

from edgebench.board import layer_profiles, onnx_nodes
from edgebench.board.layer_profiles import OnnxModuleMap, joined_module_path, profile_rows
from edgebench.board.runners.eager import EagerRunner, find_hooks
from edgebench.board.runners.onnxruntime import OnnxRuntimeRunner, trace_runs
from edgebench.board.synthetic_inputs import make_inputs

INPUTS = [{"name": "input", "shape": [1, 3, 32, 32], "dtype": "float32"}]
RESNET18 = {"format": "torchvision", "name": "resnet18", "kwargs": {}}


@pytest.fixture(scope="module")
def resnet18_exports(tmp_path_factory):
    """resnet18 at 32x32 through both torch exporters edgebench uses: {"dynamo": path, "legacy": path}."""
    folder = tmp_path_factory.mktemp("exports")
    model = torchvision.models.resnet18(weights=None).eval()
    args = (torch.zeros(1, 3, 32, 32),)
    paths = {"dynamo": folder / "dynamo.onnx", "legacy": folder / "legacy.onnx"}
    torch.onnx.export(model, args, str(paths["dynamo"]), dynamo=True, external_data=False, input_names=["input"])
    torch.onnx.export(model, args, str(paths["legacy"]), dynamo=False, opset_version=17, input_names=["input"])
    return paths


@pytest.mark.parametrize("scopes, path", [
    (["", "layer1", "layer1.0", "layer1.0.bn1"], "layer1.0.bn1"),  # dynamo: full paths
    (["layer2", "layer2.0", "downsample", "downsample.0"], "layer2.0.downsample.0"),  # TorchScript exporter
    (["backbone", "features", "0"], "backbone.features.0"),  # attribute names
    ([""], "<root>"),
    ([], "<root>"),
])
def test_module_paths_are_joined_from_each_exporters_scopes(scopes, path):
    assert joined_module_path(scopes) == path


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_the_node_reader_reads_what_onnx_reads(resnet18_exports, exporter):
    path = resnet18_exports[exporter]
    expected = [(n.name, n.op_type, list(n.input), list(n.output), {p.key: p.value for p in n.metadata_props})
                for n in onnx.load(str(path)).graph.node]
    assert [(n.name, n.op_type, n.inputs, n.outputs, n.metadata) for n in onnx_nodes.read_nodes(path)] == expected


def test_a_file_that_is_no_onnx_model_is_refused(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "text.onnx").write_bytes(b"\x0fnot a protobuf at all")
    for name in ("empty.onnx", "text.onnx"):
        with pytest.raises(ValueError):
            onnx_nodes.read_nodes(tmp_path / name)


def test_onnx_runtime_names_map_to_modules(resnet18_exports):
    dynamo = OnnxModuleMap.from_file(resnet18_exports["dynamo"])
    assert dynamo.module_of("node_relu_1") == "layer1.0.relu"  # a node by its own name, from its name scopes
    # ORT names a rewritten node after its output; a Conv walks back from the ReLU fused into it.
    assert dynamo.module_of("relu_1_nchwc") == "layer1.0.relu"
    assert dynamo.module_of("relu_1_nchwc", "Conv") == "layer1.0.bn1"  # the exporter folded bn1 into conv1
    assert dynamo.module_of("node_add", "Add") == "layer1.0"  # a functional add belongs to its block
    legacy = OnnxModuleMap.from_file(resnet18_exports["legacy"])
    assert legacy.module_of("/layer1/layer1.0/relu/Relu_output_0_nchwc", "Conv") == "layer1.0.conv1"
    assert legacy.module_of("/layer2/layer2.0/downsample/downsample.0/Conv_output_0_nchwc", "Conv") == \
        "layer2.0.downsample.0"
    for names in (dynamo, legacy):
        assert names.module_of("ReorderOutput", "ReorderOutput") is None and names.node_of("ReorderOutput") is None


def test_rows_aggregate_runs_in_the_order_layers_ran():
    runs = [{"b": (2.0, 1), "a": (1.0, 2)}, {"b": (4.0, 1), "a": (1.0, 2)},
            {"b": (3.0, 1), "a": (1.0, 2), "c": (5.0, 1)}]
    rows = profile_rows(runs, {"a": {"module": "m.a", "type": "ReLU", "onnx_nodes": []}})
    assert [(r["layer"], r["module"], r["type"], r["calls"], r["runs"], r["median_ms"]) for r in rows] == [
        ("b", None, None, 1, 3, 3.0), ("a", "m.a", "ReLU", 2, 3, 1.0), ("c", None, None, 1, 1, 5.0)]
    assert rows[0]["mean_ms"] == pytest.approx(3.0)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0) and rows[2]["share"] == pytest.approx(5 / 9)


def test_a_trace_is_split_into_runs_by_model_run_spans(resnet18_exports):
    def node(name, ts, dur, op="Conv"):
        return {"cat": "Node", "name": name + "_kernel_time", "ts": ts, "dur": dur, "args": {"op_name": op}}

    events = [{"cat": "Session", "name": "model_run", "ts": 100, "dur": 50},
              {"cat": "Session", "name": "model_run", "ts": 200, "dur": 50},
              node("relu_1_nchwc", 110, 20), node("node_add", 130, 4, "Add"), node("node_add", 135, 2, "Add"),
              node("relu_1_nchwc", 210, 30),
              {"cat": "Node", "name": "node_add_fence_before", "ts": 240, "dur": 1},  # not a kernel's time
              node("outside", 300, 9)]  # not inside any run: dropped
    runs, layers = trace_runs(events, OnnxModuleMap.from_file(resnet18_exports["dynamo"]))
    assert runs == [{"relu_1_nchwc": (0.02, 1), "node_add": (0.006, 2)},
                    {"relu_1_nchwc": (0.03, 1)}]
    assert layers["node_add"] == {"module": "layer1.0", "type": "Add", "onnx_nodes": ["node_add"]}
    assert (layers["relu_1_nchwc"]["module"], layers["relu_1_nchwc"]["type"]) == ("layer1.0.bn1", "Conv")
    assert "outside" not in layers


def _loaded(runner_type, model):
    runner = runner_type({"backend": runner_type.name, "device": "cpu", "model": model, "inputs": INPUTS,
                          "threads": 1, "backend_options": {}})
    runner.import_backend()
    runner.load()
    runner.bind(make_inputs(INPUTS))
    return runner


def test_eager_profiles_each_module_and_leaves_no_hook():
    runner = _loaded(EagerRunner, RESNET18)
    try:
        rows = runner.layer_profile()
        assert find_hooks(runner.module) == []
        assert all(not m._forward_hooks and not m._forward_pre_hooks for m in runner.module.modules())
    finally:
        runner.close()
    by_module = {row["module"]: row for row in rows}
    assert [row["module"] for row in rows][:5] == ["conv1", "bn1", "relu", "maxpool", "layer1.0.conv1"]
    assert by_module["layer1.0.conv1"]["type"] == "Conv2d" and by_module["fc"]["type"] == "Linear"
    assert by_module["layer1.0.relu"]["calls"] == 2  # BasicBlock calls its ReLU twice
    assert by_module["layer1.0"]["type"] == "BasicBlock"  # its functional add, outside any submodule
    assert "layer1" not in by_module  # a container that ran nothing itself
    assert all(row["runs"] == layer_profiles.PROFILE_RUNS and row["median_ms"] > 0 and row["onnx_nodes"] == []
               for row in rows)
    assert sum(row["share"] for row in rows) == pytest.approx(1.0)


def test_eager_hooks_are_removed_when_profiling_fails(monkeypatch):
    runner = _loaded(EagerRunner, RESNET18)
    try:
        monkeypatch.setattr(runner, "infer", lambda: (_ for _ in ()).throw(RuntimeError("boom")))
        with pytest.raises(RuntimeError):
            runner.layer_profile()
        assert find_hooks(runner.module) == []
    finally:
        runner.close()


def test_onnx_runtime_profiles_a_second_session_and_removes_its_trace(resnet18_exports, tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    runner = _loaded(OnnxRuntimeRunner, {"path": str(resnet18_exports["legacy"])})
    try:
        timed_session = runner.session
        rows = runner.layer_profile()
        assert runner.session is timed_session and not timed_session.get_session_options().enable_profiling
    finally:
        runner.close()
    assert list(tmp_path.iterdir()) == []  # the trace and its folder are gone
    modules = [row["module"] for row in rows]
    assert {"conv1", "layer1.0.conv1", "layer1.0.conv2", "layer4.1.conv2", "fc"} <= set(modules)
    assert modules.index("conv1") < modules.index("layer1.0.conv1") < modules.index("fc")  # as executed
    conv = next(row for row in rows if row["module"] == "layer1.0.conv1")
    assert conv["type"] == "Conv" and conv["onnx_nodes"] == ["/layer1/layer1.0/conv1/Conv"]
    assert all(row["runs"] == layer_profiles.PROFILE_RUNS and row["calls"] == 1 for row in rows)
    assert json.loads(json.dumps(rows)) == rows  # plain JSON for the worker's result


def test_a_runner_without_a_profiler_is_told_which_backends_have_one():
    from edgebench.board.worker import _layer_profile

    assert _layer_profile(object(), {"backend": "plugin"}) == (None, None)  # not asked for
    rows, problem = _layer_profile(object(), {"backend": "plugin", "profile_layers": True})
    assert rows is None and problem == "plugin has no per-layer profiler (eager, onnxruntime, tensorrt have)"
