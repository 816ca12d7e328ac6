"""`edgebench run` end to end: real workers, real backends, a real store."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from edgebench.cli.run import suite_stages
from edgebench.sweep.suite import load_suite
from edgebench.targets import resolve_target
from cpu_target import CPU_TARGET
from interrupting import Interrupted
from onnx_models import matmul_relu

SUPPORT = Path(__file__).resolve().parents[1] / "support"
FAST = ["--min-time", "0.2", "--max-time", "1", "--warmup", "0.05", "--min-iterations", "5", "--threads", "1",
        "--processes", "1"]


def edgebench(*args, cwd, timeout=300):
    # The support models first, then whatever the caller had (a worktree under test, say).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SUPPORT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "edgebench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def records_in(store):
    with sqlite3.connect(store) as db:
        return db.execute("SELECT model, backend, batch, status FROM results ORDER BY id").fetchall()


def test_sweep_measures_every_combination_and_stores_each(tmp_path):
    proc = edgebench("run", "-m", "worker_models:tiny", "--input-shape", "3x16x16", "--batch", "1,2",
                     "--backend", "eager,onnxruntime", "--tag", "purpose=test", "--json", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert [(r["backend"], r["batch"]) for r in records] == [
        ("eager", 1), ("onnxruntime", 1), ("eager", 2), ("onnxruntime", 2)]
    for r in records:
        assert r["status"] == "ok", r["error"]
        assert r["model"] == "worker_models:tiny"
        assert r["target"] == resolve_target("local").name and r["mode"] == "default" and r["device"] == "cpu"
        assert r["precision"] == "fp32"
        assert r["model_fingerprint"].startswith("sha256:")
        lat = r["latency_ms"]
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert lat["ci95"][0] <= lat["p50"] <= lat["ci95"][1]
        assert r["iterations"] >= 5 and r["build_s"] > 0 and r["first_inference_ms"] > 0
        assert r["throughput_ips"] == pytest.approx(r["batch"] * 1000 / lat["p50"])
        assert r["memory_mb"]["host_peak"] > 0 and r["energy"] is None
        assert r["settings"]["threads"] == 1
        assert r["env"]["packages"]["torch"] and r["env"]["cpu_model"]
        assert "samples_ms" not in r  # kept in the store, not on stdout
    assert records[1]["input_shapes"] == {"input0": [1, 3, 16, 16]}
    assert records[1]["backend_options"]["intra_op_threads"] == 1
    assert len(records_in(tmp_path / "results" / "edgebench.db")) == 4
    assert "run " in proc.stderr  # progress goes to stderr


def test_a_detectors_network_and_whole_call_are_separate_records(tmp_path):
    proc = edgebench("run", "-m", "edgebench:squeezenet_ssd", "-m", "edgebench:squeezenet_ssd#end_to_end",
                     "--input-shape", "3x64x64", "--backend", "eager", "--json", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert [(r["model"], r["status"]) for r in records] == [
        ("edgebench:squeezenet_ssd#network", "ok"), ("edgebench:squeezenet_ssd#end_to_end", "ok")]
    assert records[0]["model_fingerprint"] != records[1]["model_fingerprint"]


def test_a_segmenter_returning_a_dict_measures_on_eager_and_its_checked_onnx_export(tmp_path):
    proc = edgebench("run", "-m", "torchvision:lraspp_mobilenet_v3_large", "--input-shape", "3x64x64",
                     "--backend", "eager,onnxruntime", "--json", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    # An export that differed from eager would be an error record (artifacts._check_outputs).
    assert [(r["backend"], r["status"], r["error"]) for r in records] == [
        ("eager", "ok", None), ("onnxruntime", "ok", None)]


def test_processes_are_pooled_into_one_record(tmp_path):
    proc = edgebench("run", "-m", "worker_models:tiny", "--input-shape", "3x8x8", "-b", "onnxruntime", "--json",
                     *FAST, "--processes", "3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)[0]
    assert record["settings"]["processes"] == 3
    assert len(record["stability"]["process_p50s"]) == 3
    assert record["stability"]["process_spread"] >= 0
    assert len(record["stability"]["stop_reason"].split(",")) == 3
    assert record["iterations"] >= 5


def test_table_shows_the_speedup_over_eager(tmp_path):
    proc = edgebench("run", "-m", "worker_models:tiny", "--input-shape", "3x16x16", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "×eager" in proc.stdout
    assert "1.00x" in proc.stdout  # eager against itself


def test_a_failing_combination_is_an_error_record_and_the_sweep_goes_on(tmp_path):
    proc = edgebench("run", "-m", "worker_models:aborting", "-m", "worker_models:tiny", "--input-shape", "3x8x8",
                     "--backend", "eager", "--json", *FAST, cwd=tmp_path)
    assert proc.returncode == 1
    aborted, healthy = json.loads(proc.stdout)
    assert aborted["status"] == "error" and "SIGABRT" in aborted["error"]
    assert healthy["status"] == "ok"
    assert [row[3] for row in records_in(tmp_path / "results" / "edgebench.db")] == ["error", "ok"]


def test_hooked_model_is_refused_unless_allowed(tmp_path):
    refused = edgebench("run", "-m", "worker_models:pruned", "--input-shape", "3x8x8", "-b", "eager", "--json",
                        *FAST, cwd=tmp_path)
    assert refused.returncode == 1
    assert "features.0: prune mask on weight" in json.loads(refused.stdout)[0]["error"]
    allowed = edgebench("run", "-m", "worker_models:pruned", "--input-shape", "3x8x8", "-b", "eager", "--json",
                        "--allow-hooks", *FAST, cwd=tmp_path)
    assert allowed.returncode == 0
    record = json.loads(allowed.stdout)[0]
    assert record["hooks"] == ["features.0: prune mask on weight", "head: forward hook"]
    assert any("--allow-hooks" in w for w in record["warnings"])


def test_onnx_model_with_default_backends_skips_eager(tmp_path):
    path = matmul_relu(str(tmp_path / "m.onnx"))
    proc = edgebench("run", "-m", path, "--json", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [r["backend"] for r in json.loads(proc.stdout)] == ["onnxruntime"]
    assert "skipped: m.onnx on eager" in proc.stderr


def test_onnx_model_on_eager_when_asked_is_an_error_record(tmp_path):
    path = matmul_relu(str(tmp_path / "m.onnx"))
    proc = edgebench("run", "-m", path, "-b", "eager,onnxruntime", "--json", *FAST, cwd=tmp_path)
    assert proc.returncode == 1
    eager, ort = json.loads(proc.stdout)
    assert eager["status"] == "error" and "is an ONNX file" in eager["error"]
    assert ort["status"] == "ok"


def test_rejected_input_shape_is_an_error_record(tmp_path):
    proc = edgebench("run", "-m", "worker_models:tiny", "--input-shape", "4x8x8", "-b", "eager", "--json", *FAST,
                     cwd=tmp_path)
    assert proc.returncode == 1
    assert "first inference failed with inputs input0 1x4x8x8" in json.loads(proc.stdout)[0]["error"]


def test_a_backend_that_cannot_run_here_is_an_unavailable_record_beside_the_measured_ones(tmp_path):
    (tmp_path / "cpu.toml").write_text(CPU_TARGET)
    proc = edgebench("run", "-m", "worker_models:tiny", "--input-shape", "3x8x8", "--target", "cpu.toml",
                     "-b", "eager,tensorrt", "--json", *FAST, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # unavailable is not an error
    records = json.loads(proc.stdout)
    assert [(r["backend"], r["status"]) for r in records] == [("eager", "ok"), ("tensorrt", "unavailable")]
    assert records[1]["error"] == "the target does not run backend 'tensorrt'; its backends: eager, onnxruntime"
    assert records[1]["latency_ms"] is None and records[1]["target"] == "plain-cpu"
    assert [row[1:] for row in records_in(tmp_path / "results" / "edgebench.db")] == [
        ("eager", 1, "ok"), ("tensorrt", 1, "unavailable")]
    table = edgebench("run", "-m", "worker_models:tiny", "--input-shape", "3x8x8", "--target", "cpu.toml",
                      "-b", "tensorrt", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "unavailable" in table.stdout and "tensorrt" in table.stdout


@pytest.mark.parametrize("args, message", [
    (["-m", "torchvision:resnet1800"], "resnet18"),
    (["-t", "xavier", "-b", "eager"], "target xavier cannot run here: this machine is not a Jetson"),
    (["-m", "missing.onnx"], "no such model file"),
    (["-b", "tensorflow"], "unknown backend 'tensorflow'"),
    (["--batch", "0"], "--batch must be at least 1"),
    (["--tag", "novalue"], "--tag takes KEY=VALUE"),
    (["--backend-option", "onnxruntime.spin=1"], "onnxruntime has no option 'spin'"),
    (["--backend-option", "onnxruntime.allow_spinning=maybe"], "takes a boolean"),
    (["--min-time", "5", "--max-time", "1"], "--max-time (1) must be at least --min-time (5)"),
    (["--store", "mysql://db/edgebench"], "give a SQLite file path (or sqlite:///path) or a postgresql://"),
    (["--store", "postgresql://bench:s3cret@db/"], "postgresql://bench:***@db/': name the server and the database"),
])
def test_usage_errors_are_one_line_and_exit_2(tmp_path, args, message):
    proc = edgebench("run", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_corrupt_onnx_file_is_a_usage_error(tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"\x00not a protobuf at all")
    proc = edgebench("run", "-m", "broken.onnx", cwd=tmp_path)
    assert proc.returncode == 2
    assert "broken.onnx" in proc.stderr and "Traceback" not in proc.stderr


def test_interrupt_keeps_what_was_measured(tmp_path):
    run = Interrupted(["run", "-m", "worker_models:tiny", "-m", "worker_models:hanging", "--input-shape", "3x8x8",
                       "-b", "eager", *FAST], tmp_path)
    # The progress line comes just before the hanging model's worker starts; wherever the
    # interrupt lands from there (starting the worker, inside it), the run ends the same way.
    run.wait_for_line("measuring 2/2: worker_models:hanging")
    assert run.interrupt() == 130, run.stderr
    assert "interrupted: 1 record(s) kept" in run.stderr
    store = tmp_path / "results" / "edgebench.db"
    assert records_in(store) == [("worker_models:tiny", "eager", 1, "ok")]
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT status FROM runs").fetchone() == ("interrupted",)


def test_a_suite_runs_its_matrix_in_one_run(tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text("\n".join([
        'name = "tiny-nightly"', "[settings]", "min_time = 0.2", "max_time = 1.0", "processes = 1",
        "[[matrix]]", 'models = ["worker_models:tiny"]', 'targets = ["local"]', 'backends = ["eager", "onnxruntime"]',
        "batches = [1, 2]", 'input_shapes = ["3x8x8"]', ""]))
    proc = edgebench("run", "--suite", str(suite), "--json", "--warmup", "0.05", "--min-iterations", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert [(r["backend"], r["batch"]) for r in records] == [
        ("eager", 1), ("onnxruntime", 1), ("eager", 2), ("onnxruntime", 2)]
    assert {r["run_id"] for r in records} == {records[0]["run_id"]}
    assert {r["settings"]["processes"] for r in records} == {1}
    with sqlite3.connect(tmp_path / "results" / "edgebench.db") as db:
        assert json.loads(db.execute("SELECT tags FROM runs").fetchone()[0]) == {"suite": "tiny-nightly"}


def test_a_suite_target_file_without_a_backend_plans_it_unavailable(tmp_path):
    (tmp_path / "cpu.toml").write_text(CPU_TARGET)
    suite = tmp_path / "suite.toml"
    suite.write_text("\n".join([
        'name = "s"', "[[matrix]]", 'models = ["worker_models:tiny"]', f'targets = ["{tmp_path / "cpu.toml"}"]',
        'backends = ["eager", "tensorrt"]', 'input_shapes = ["3x8x8"]', ""]))
    [stage] = suite_stages(load_suite(suite), None)
    assert [(m.backend, m.unavailable) for m in stage.measurements] == [
        ("eager", None), ("tensorrt", "the target does not run backend 'tensorrt'; its backends: eager, onnxruntime")]


def test_a_suite_replaces_the_matrix_options(tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text('name = "s"\n[[matrix]]\nmodels = ["worker_models:tiny"]\nbackends = ["eager"]\n')
    proc = edgebench("run", "--suite", str(suite), "-m", "torchvision:resnet18", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "edgebench: error: --suite sets the models, targets, modes and backends; leave out --model"]
