"""`edgebench run --profile-layers` on eager and ONNX Runtime end to end, and `edgebench results layers`."""

import json

from test_run import FAST, edgebench


def _run(tmp_path, *args):
    proc = edgebench("run", "--input-shape", "3x32x32", "--profile-layers", "--json", *args, *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert [r["status"] for r in records] == ["ok"] * len(records), [r["error"] for r in records]
    return records


def test_eager_and_onnx_runtime_profiles_map_to_the_models_modules(tmp_path):
    eager, ort = _run(tmp_path, "-m", "torchvision:resnet18", "--backend", "eager,onnxruntime")
    assert not any(w.startswith("--profile-layers") for w in eager["warnings"] + ort["warnings"])
    eager_modules = [row["module"] for row in eager["layer_profile"]]
    assert eager_modules[:5] == ["conv1", "bn1", "relu", "maxpool", "layer1.0.conv1"] and "fc" in eager_modules
    assert eager["hooks"] == []  # profiling's hooks came after the timed loop and went
    # The dynamo export folds each BatchNorm into its convolution under the BatchNorm's name.
    ort_modules = {row["module"] for row in ort["layer_profile"]}
    assert {"bn1", "layer1.0.bn1", "layer4.1.bn2", "fc"} <= ort_modules
    run_id = ort["run_id"]
    diff = edgebench("results", "layers", f"{run_id}:1", f"{run_id}:2", "--depth", "1", "--json", cwd=tmp_path)
    assert diff.returncode == 0, diff.stderr
    modules = {m["module"]: m for m in json.loads(diff.stdout)["modules"]}
    assert {"layer1", "layer2", "layer3", "layer4", "fc"} <= set(modules)
    assert all(m["a_ms"] > 0 and m["b_ms"] > 0 for name, m in modules.items() if name.startswith("layer"))
    refused = edgebench("results", "layers", f"{run_id}:7", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        f"edgebench: error: record '{run_id}:7': run {run_id} has records :1 to :2, not :7"]


def test_a_narrower_model_diffs_faster_in_the_modules_it_narrowed(tmp_path):
    # width_per_group=32 halves each Bottleneck's conv2 (and conv1/conv3's inner width), nothing else.
    dense, narrow = _run(tmp_path, "-m", "torchvision:resnet50", "-m", "torchvision:resnet50?width_per_group=32",
                         "--backend", "eager")
    run_id = dense["run_id"]
    diff = edgebench("results", "layers", f"{run_id}:1", f"{run_id}:2", "--json", cwd=tmp_path)
    assert diff.returncode == 0, diff.stderr
    modules = {m["module"]: m for m in json.loads(diff.stdout)["modules"]}
    assert set(modules) == {row["module"] for row in dense["layer_profile"]}  # the same modules, joined
    narrowed = [m for name, m in modules.items() if name.endswith(".conv2") and name.startswith(("layer3", "layer4"))]
    assert len(narrowed) == 9
    assert sum(m["b_ms"] for m in narrowed) < sum(m["a_ms"] for m in narrowed)
    table = edgebench("results", "layers", f"{run_id}:1", f"{run_id}:2", cwd=tmp_path)
    assert table.returncode == 0 and "per module, largest change first" in table.stdout
