"""A resolution sweep end to end: `edgebench run --input-shape A,B` measures each shape with real
workers on eager and ONNX Runtime, and the run table, `compare` and `compare --resolution` show
each shape apart; the ambiguous and contradictory forms are one-line refusals."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edgebench.results.store import Store
from onnx_models import matmul_relu
from records import add_run, synthetic_record

SUPPORT = Path(__file__).resolve().parents[1] / "support"
FAST = ["--min-time", "0.2", "--max-time", "1", "--warmup", "0.05", "--min-iterations", "5", "--threads", "1",
        "--processes", "1"]
SHAPES = ("3x8x8", "3x32x32")  # the tiny net pools globally: any image size runs


@pytest.fixture(scope="module")
def swept_store(tmp_path_factory):
    """One run of worker_models:tiny at both shapes, eager and ONNX Runtime: its store and what it printed."""
    cwd = tmp_path_factory.mktemp("sweep")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SUPPORT), os.environ.get("PYTHONPATH")])),
           "EDGEBENCH_CACHE_DIR": str(cwd / "cache")}
    proc = subprocess.run([sys.executable, "-m", "edgebench", "run", "-m", "worker_models:tiny", "--input-shape",
                           ",".join(SHAPES), "-b", "eager,onnxruntime", *FAST], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return cwd / "results" / "edgebench.db", proc


def test_each_shape_is_a_binding_of_its_own(swept_store):
    store, _ = swept_store
    with Store.open(store, create=False) as opened:
        records = opened.records()
    assert [(r.input_shape, r.backend, r.status) for r in records] == [
        (shape, backend, "ok") for shape in SHAPES for backend in ("eager", "onnxruntime")]
    assert records[3].input_shapes == {"input0": [1, 3, 32, 32]}
    # The same weights, so the same fingerprint: only the input shape keeps the keys apart.
    assert len({r.model_fingerprint for r in records}) == 1 and len({r.key for r in records}) == 4
    # Each shape had its own ONNX export.
    exports = [json.loads(path.read_text())["inputs"] for path in (store.parents[1] / "cache" / "onnx").glob("*.json")]
    assert sorted(spec["shape"] for inputs in exports for spec in inputs) == [[1, 3, 8, 8], [1, 3, 32, 32]]


def test_the_run_table_and_progress_name_the_shape(swept_store):
    _, proc = swept_store
    assert re.search(r"worker_models:tiny\s+3x32x32\s+1\s+onnxruntime\s+\d+\.\d{3}", proc.stdout), proc.stdout
    assert "ok worker_models:tiny b1 onnxruntime 3x32x32: p50 " in proc.stderr


def test_compare_pairs_each_shape_with_itself(swept_store, cli):
    store, _ = swept_store
    result = cli("compare", "--baseline", "eager", "--contender", "onnxruntime", "--store", str(store),
                 "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert [row["input_shape"] for row in csv.DictReader(io.StringIO(result.stdout))] == list(SHAPES)
    table = cli("compare", "--baseline", "eager", "--contender", "onnxruntime", "--store", str(store))
    assert "worker_models:tiny 3x32x32 b1 fp32" in table.stdout


def test_the_resolution_view_in_every_format(swept_store, cli):
    store, _ = swept_store
    rows = json.loads(cli("compare", "--resolution", "--store", str(store), "--json").stdout)
    assert [(row["backend"], row["input_shape"]) for row in rows] == [
        (backend, shape) for backend in ("eager", "onnxruntime") for shape in SHAPES]
    for row in rows:
        assert row["p50_ci95_low_ms"] <= row["p50_ms"] <= row["p50_ci95_high_ms"]
        assert row["fps"] == pytest.approx(1000.0 / row["p50_ms"])  # batch 1
    table = cli("compare", "--resolution", "--store", str(store))
    assert table.returncode == 0, table.stderr
    assert "frames per second against input shape" in table.stdout
    assert re.search(r"worker_models:tiny\s+3x8x8\s+1\s+fp32\s+eager\s+\S+/default/cpu\s+\d+\.\d{3}\s+\[", table.stdout)
    markdown = cli("compare", "--resolution", "--store", str(store), "--format", "markdown").stdout.splitlines()
    assert markdown[0] == ("| model | input | b | precision | backend | target/mode/device | p50 ms | 95% CI | fps "
                           "| warn |") and len(markdown) == 2 + 4
    assert len(list(csv.DictReader(io.StringIO(cli("compare", "--resolution", "--store", str(store),
                                                   "--format", "csv").stdout)))) == 4


def test_records_at_one_shape_hold_no_sweep(cli, tmp_path):
    store = tmp_path / "one.db"
    with Store.open(store) as opened:
        add_run(opened, lambda run_id, started_at: [synthetic_record(run_id, input_shapes={"input0": [1, 3, 8, 8]})])
    result = cli("compare", "--resolution", "--store", str(store))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "edgebench: error: no resolution sweep in these records: each model, batch, backend and target was measured "
        "at one input shape; measure several with --input-shape 3x256x512,3x512x1024"]


def test_regress_names_the_shape_in_each_key(cli, tmp_path):
    def run(run_id, started_at):
        return [synthetic_record(run_id, p50, seed=seed, created_at=started_at, input_shapes={"input0": [1, 3, h, w]})
                for seed, (h, w, p50) in enumerate(((256, 512, 2.0), (512, 1024, 8.0)))]

    store, junit = tmp_path / "s.db", tmp_path / "report.xml"
    with Store.open(store) as opened:
        add_run(opened, run)
        add_run(opened, run)
    result = cli("regress", "--store", str(store), "--junit", str(junit))
    assert result.returncode == 0, result.stdout + result.stderr
    # Two keys of one model that differ only in the shape: JUnit testcase names stay unique.
    assert sorted(case.get("name") for case in ET.parse(junit).getroot().iter("testcase")) == [
        f"torchvision:resnet18 b1 onnxruntime fp32 local/default/cpu at {shape}" for shape in ("3x256x512", "3x512x1024")]


@pytest.mark.parametrize(("args", "message"), [
    (["run", "-m", "worker_models:tiny", "--input-shape", "a=3x8x8,3x16x16", "--input-shape", "b=1,2,3"],
     "--input-shape alternatives pair up by position across inputs, so each input needs as many; "
     "got 'a=3x8x8,3x16x16' (2), 'b=1,2,3' (3)"),
    (["run", "-m", "one.onnx", "--input-shape", "16", "--input-shape", "32"],
     "input 'input' of one.onnx is given two shapes; to measure each, give them in one value: --input-shape 16,32"),
    (["run", "-m", "worker_models:tiny", "--input-shape", "3x8x8,3xa"], "bad input shape '3xa'"),
    (["compare", "--resolution", "--baseline", "eager"],
     "--resolution shows each key's latest record against input shape; give it without --baseline and --contender"),
    (["compare", "--resolution", "--pruned"], "--pruned and --resolution are two views; give one"),
])
def test_refusals_are_one_line(cli, tmp_path, args, message):
    matmul_relu(tmp_path / "one.onnx")
    result = cli(*args)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"edgebench: error: {message}"), line
