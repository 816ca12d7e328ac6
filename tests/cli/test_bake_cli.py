"""`edgebench bake` end to end: a masked model file in, a smaller one out, measured against the
masked one in real eager worker processes, then run by `edgebench run`."""

import json
import os
import subprocess
import sys

import pytest
import torch
from torch.nn.utils import prune

from edgebench.board.runners.eager import find_hooks
from onnx_models import matmul_relu
from worker_models import TinyConvNet
from support_path import with_support

SHAPE = "3x16x16"


def edgebench(*args, cwd, timeout=300):
    # The pickled modules are worker_models classes: the CLI, its workers and torch.load import them.
    env = {**os.environ, "PYTHONPATH": with_support()}
    return subprocess.run([sys.executable, "-m", "edgebench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(proc, text):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("edgebench: error: ") and text in lines[-1], proc.stderr
    return lines


@pytest.fixture
def masked(tmp_path):
    """TinyConvNet(16) saved whole: the second conv's filters and biases masked to half, the first
    conv's filters only (its biases make those channels constants, not zeros)."""
    torch.manual_seed(0)
    model = TinyConvNet(channels=16).eval()
    second = model.features[2]
    prune.ln_structured(second, "weight", amount=0.5, n=1, dim=0)
    prune.custom_from_mask(second, "bias", mask=second.weight_mask.flatten(1).any(dim=1).float())
    prune.ln_structured(model.features[0], "weight", amount=0.25, n=1, dim=0)
    path = tmp_path / "masked.pt"
    torch.save(model, path)
    return path, model


def test_a_masked_file_bakes_into_a_smaller_file_that_runs(tmp_path, masked):
    path, model = masked
    out = tmp_path / "baked.pt"
    proc = edgebench("bake", str(path), "--out", str(out), "--input-shape", SHAPE, "--threads", "1", "--json",
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["layers"] == [{"name": "features.2", "group": "features.2", "before": 16, "after": 8}]
    assert report["channels_removed"] == 8
    assert report["params"]["after"] < report["params"]["before"]
    assert report["macs"]["after"] < report["macs"]["before"]
    assert report["max_abs_diff"] < 1e-5
    [kept] = report["kept"]
    assert (kept["scope"], kept["where"], kept["channels"]) == ("group", "features.0", 4)
    assert "non-zero bias" in kept["reason"]
    speedup = report["speedup"]
    low, high = speedup["ci95"]
    assert 0 < low <= speedup["speedup"] <= high
    assert speedup["masked_p50_ms"] > 0 and speedup["baked_p50_ms"] > 0
    assert speedup["latency_ratio"]["rounds"] >= 2
    assert "paired eager measurement on this machine" in speedup["method"]

    baked = torch.load(out, weights_only=False)
    assert type(baked) is TinyConvNet and find_hooks(baked) == []
    assert baked.features[2].out_channels == 8 and baked.head.in_features == 8
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(x), baked(x), rtol=1e-4, atol=1e-5)

    run = edgebench("run", "--model", str(out), "--input-shape", SHAPE, "--backend", "eager", "--min-time", "0.2",
                    "--max-time", "0.5", "--processes", "1", "--no-power", "--store", str(tmp_path / "tmp.db"),
                    cwd=tmp_path)
    assert run.returncode == 0, run.stderr


def test_the_table_report_without_measuring(tmp_path, masked, cli):
    path, _ = masked
    proc = cli("bake", str(path), "--out", str(tmp_path / "baked.pth"), "--input-shape", SHAPE, "--no-measure")
    assert proc.returncode == 0, proc.stderr
    assert "features.2" in proc.stdout and "channels removed 8" in proc.stdout
    assert "kept 4 zero channel(s) of group features.0" in proc.stdout
    assert "speedup" not in proc.stdout
    assert (tmp_path / "baked.pth").is_file()


def test_nothing_to_bake_writes_the_model_and_says_so(tmp_path, cli):
    out = tmp_path / "tiny.pt"
    proc = cli("bake", "worker_models:tiny", "--out", str(out), "--input-shape", "3x8x8", "--no-measure")
    assert proc.returncode == 0, proc.stderr
    assert "no channel was removable" in proc.stdout
    assert isinstance(torch.load(out, weights_only=False), TinyConvNet)


@pytest.mark.parametrize("args, text", [
    (["missing.pt", "--out", "out.pt", "--input-shape", "3x8x8"], "no such model file: missing.pt"),
    (["m.onnx", "--out", "out.pt"], "bake needs an nn.Module with its masks: m.onnx is an ONNX graph"),
    (["masked.pt", "--out", "out.onnx", "--input-shape", SHAPE], "--out out.onnx must end in .pt or .pth"),
])
def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, masked, cli, args, text):
    matmul_relu(str(tmp_path / "m.onnx"))
    proc = cli("bake", *args)
    assert one_line_error(proc, text) == [proc.stderr.strip()]
    assert not (tmp_path / "out.pt").exists() and not (tmp_path / "out.onnx").exists()


SHIFTED = '''
import torch
from torch import nn


class Shifted(nn.Module):
    """Half the filters zeroed, then a constant added to every channel: those channels are not dead,
    and Torch-Pruning cannot see the buffer that makes them live."""

    def __init__(self):
        super().__init__()
        self.first = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.register_buffer("shift", torch.ones(1, 1, 1, 1))
        self.last = nn.Conv2d(8, 4, 3, padding=1)
        with torch.no_grad():
            self.first.weight[:4] = 0

    def forward(self, x):
        return self.last(torch.relu(self.first(x)) + self.shift)
'''


def test_changed_outputs_are_an_error_and_nothing_is_written(tmp_path, cli):
    (tmp_path / "shifted.py").write_text(SHIFTED)
    proc = cli("bake", "shifted:Shifted", "--out", "out.pt", "--input-shape", "3x8x8", "--no-measure")
    one_line_error(proc, "the baked model's outputs differ from the original's")
    assert not (tmp_path / "out.pt").exists()
