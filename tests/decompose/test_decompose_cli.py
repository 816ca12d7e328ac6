"""`edgebench decompose` end to end: real training on the digits, real SVDs, every layer's ranks
measured in paired worker processes on eager and ONNX Runtime, records in a real store, a model
file that loads and runs."""

import json
import os
import subprocess
import sys

import pytest
import torch

from edgebench.results.store import Store
from support_path import with_support

MODEL = "worker_models:tiny?channels=64"
QUICK = ["--task", "digits?size=16", "--train-steps", "30", "--finetune-steps", "5", "--rounds", "4",
         "--block-time", "0.02", "--threads", "1", "--ranks", "2"]


def edgebench(*args, cwd, timeout=600):
    # The layers and models are pickled worker_models modules: the CLI and its workers both import them.
    env = {**os.environ, "PYTHONPATH": with_support()}
    return subprocess.run([sys.executable, "-m", "edgebench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_channel_svd_chooses_measured_ranks_and_writes_a_model_that_runs(tmp_path):
    out = tmp_path / "tiny-channel.pt"
    proc = edgebench("decompose", "--model", MODEL, "--method", "channel", "--max-error", "0.9", "--backend",
                     "eager,onnxruntime", "--out", str(out), "--store", "results.db", *QUICK, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "layer 1/2 features.0" in proc.stderr and "layer 2/2 features.2" in proc.stderr
    assert "paired ratio" in proc.stdout
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["method"] == "channel" and report["backends"] == ["eager", "onnxruntime"]
    assert [layer["layer"] for layer in report["layers"]] == ["features.0", "features.2"]
    assert not list(tmp_path.glob(".*.layers"))  # the layers' throwaway files are gone
    for layer in report["layers"]:
        assert layer["trials"], layer
        for trial in layer["trials"]:
            assert trial["macs"] < layer["macs"]
            measured = trial["error"] <= report["max_error"]
            assert bool(trial["latency_ratio"]) == measured
        if layer["rank"] is not None:
            chosen = next(t for t in layer["trials"] if t["rank"] == layer["rank"])
            # Only a rank the target measured faster on every backend, within the budget, is kept.
            assert chosen["error"] <= report["max_error"]
            assert all(r["ci95"][1] < 1.0 for r in chosen["latency_ratio"].values())
            assert report["ranks"][layer["layer"]] == layer["rank"]
    original, decomposed = report["original"], report["decomposed"]
    for key in ("accuracy", "macs", "params", "latency_ms"):
        assert key in original and key in decomposed
    assert set(decomposed["latency_ratio"]) == {"eager", "onnxruntime"}
    assert 0 <= decomposed["accuracy_before_finetune"] <= 1
    model = torch.load(out, weights_only=False)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    decomposed_layers = {name for name, module in model.named_modules() if isinstance(module, torch.nn.Sequential)
                         and name in report["ranks"]}
    assert decomposed_layers == set(report["ranks"])
    if report["ranks"]:
        assert decomposed["macs"] < original["macs"] and decomposed["params"] < original["params"]
    else:
        assert decomposed["macs"] == original["macs"] and report["warnings"]
    with Store.open(tmp_path / "results.db", create=False) as store:
        records = [record.to_json_dict(with_samples=False) for record in store.records()]
    stages = {(r["env"]["decompose"]["stage"], r["env"]["decompose"]["role"]) for r in records}
    assert stages == {("layer", "original"), ("layer", "candidate"), ("final", "original"),
                      ("final", "decomposed")}
    final = [r for r in records if r["env"]["decompose"]["stage"] == "final"]
    assert {r["backend"] for r in final} == {"eager", "onnxruntime"} and len(final) == 4
    assert all(r["env"]["decompose"]["ranks"] == report["ranks"] and r["method"] == "paired" for r in final)


@pytest.mark.parametrize("args, message", [
    (["--method", "tucker", "--max-error", "0.1"], "--method must be one of spatial, channel"),
    (["--method", "spatial", "--max-error", "0"], "--max-error must be above 0"),
    (["--method", "spatial", "--max-error", "0.1", "--layers", "layer9.*"], "--layers 'layer9.*' matches no"),
    (["--method", "spatial", "--max-error", "0.1", "--task", "nosuch"], "unknown task 'nosuch'"),
])
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, args, message):
    proc = cli("decompose", "--model", "torchvision:resnet18?num_classes=10", "--out", "r18.pt", *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgebench: error: "), proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "r18.pt").exists()


def test_the_output_must_be_a_pt_file(cli, tmp_path):
    proc = cli("decompose", "--model", "torchvision:resnet18?num_classes=10", "--method", "channel",
               "--max-error", "0.1", "--out", "r18.onnx")
    assert proc.returncode == 2 and "must end in .pt or .pth" in proc.stderr


def test_ctrl_c_keeps_the_layers_measured_so_far_and_removes_the_scratch_files(tmp_path):
    from interrupting import Interrupted

    out = tmp_path / "tiny.pt"
    run = Interrupted(["decompose", "--model", MODEL, "--method", "channel", "--max-error", "10", "--out", str(out),
                       "--store", "results.db", *QUICK], tmp_path)
    run.wait_for_line("layer 2/2 features.2")  # the first layer's records are stored by then
    assert run.interrupt() == 130, run.stderr
    assert "Traceback" not in run.stderr
    kept = [line for line in run.stderr.splitlines() if line.startswith("interrupted: ")]
    assert len(kept) == 1 and "kept in results.db under run" in kept[0], run.stderr
    with Store.open(tmp_path / "results.db", create=False) as store:
        records = [record.to_json_dict(with_samples=False) for record in store.records()]
        runs = [info.status for info in store.runs()]
    assert records and {r["env"]["decompose"]["layer"] for r in records} >= {"features.0"}
    assert kept[0].startswith(f"interrupted: {len(records)} record(s) kept")
    assert runs == ["interrupted"]
    assert not out.exists() and not list(tmp_path.glob(".*.layers"))


def test_an_onnx_model_cannot_be_decomposed(cli, tmp_path):
    from onnx_models import matmul_relu

    path = matmul_relu(str(tmp_path / "m.onnx"))
    proc = cli("decompose", "--model", path, "--method", "channel", "--max-error", "0.1", "--out", "m.pt")
    assert proc.returncode == 2 and "edgebench decompose needs a PyTorch model" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "m.pt").exists()
