"""``results export --format pytest-benchmark``: pytest-benchmark's own statistics and its compare command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import edgebench.cli.results  # noqa: F401  (registers the sub-commands on app)
from edgebench.cli.app import app
from edgebench.results.benchmark_json import round_stats
from edgebench.results.export import export_records
from edgebench.results.store import Store

from records import add_run, failed_record, synthetic_record

pytest_benchmark_stats = pytest.importorskip(
    "pytest_benchmark.stats", reason="pytest-benchmark is in the test extra: pip install -e '.[test]'")
COMPARE = Path(sys.executable).with_name("pytest-benchmark")


def nightly(p50s: dict[str, float], seed: int):
    """A run's records: resnet18 at batch 1 on each backend of ``p50s``, and a failed tensorrt measurement."""
    def make(run_id: str, started_at: str):
        measured = [synthetic_record(run_id, p50, backend=backend, seed=seed + index, created_at=started_at)
                    for index, (backend, p50) in enumerate(p50s.items())]
        return measured + [failed_record(run_id, backend="tensorrt", created_at=started_at)]
    return make


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "store.db") as opened:
        add_run(opened, nightly({"eager": 20.0, "onnxruntime": 4.0}, seed=1), git_commit="aaaa111")
        add_run(opened, nightly({"eager": 20.5, "onnxruntime": 4.8}, seed=5), git_commit="bbbb222-dirty",
                tags={"nightly": "2026-11-21"})
        yield opened


@pytest.mark.parametrize("count", [1, 2, 9, 11, 400, 401])  # each of the quartile rule's cases
def test_stats_are_those_pytest_benchmark_computes(count):
    seconds = list(np.random.default_rng(count).lognormal(np.log(2e-3), 0.2, count))
    theirs = pytest_benchmark_stats.Stats()
    for value in seconds:
        theirs.update(value)
    ours = round_stats(seconds)
    expected = theirs.as_dict()
    assert ours["outliers"] == expected.pop("outliers")
    assert {field: ours[field] for field in expected} == pytest.approx(expected, rel=1e-12)
    assert ours["data"] == seconds and ours["iterations"] == 1


def test_export_is_the_latest_run_in_seconds_failed_measurements_left_out(store, tmp_path):
    out = tmp_path / "bench" / "latest.json"
    assert export_records(store, "pytest-benchmark", out) == 2
    document = json.loads(out.read_text())
    latest = store.runs()[0]
    assert document["datetime"] == latest.started_at
    assert document["commit_info"]["id"] == "bbbb222" and document["commit_info"]["dirty"] is True
    assert document["machine_info"]["node"] == "bench-a"
    names = [bench["name"] for bench in document["benchmarks"]]
    assert names == ["torchvision:resnet18[eager-fp32-b1]", "torchvision:resnet18[onnxruntime-fp32-b1]"]
    ort = document["benchmarks"][1]
    record = store.records(latest.id)[1]
    assert ort["stats"]["median"] == pytest.approx(record.latency_ms.p50 / 1000)
    assert ort["stats"]["rounds"] == len(record.samples_ms) == 1200
    assert ort["group"] == "torchvision:resnet18 b1" and ort["params"]["backend"] == "onnxruntime"
    assert ort["extra_info"]["run_id"] == latest.id
    assert ort["extra_info"]["latency_ms"]["p50"] == record.latency_ms.p50


def test_pytest_benchmark_compare_reads_two_exported_runs(store, tmp_path):
    older, newer = reversed(store.runs())
    files = [tmp_path / f"{index:04d}_{run.id}.json" for index, run in enumerate((older, newer), start=1)]
    for path, run in zip(files, (older, newer)):
        export_records(store, "pytest-benchmark", path, run_id=run.id)
    result = subprocess.run([str(COMPARE), "compare", *map(str, files), "--columns=min,median,max,rounds"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    table = result.stdout
    assert "benchmark 'torchvision:resnet18 b1'" in table
    for name in ("torchvision:resnet18[eager-fp32-b1]", "torchvision:resnet18[onnxruntime-fp32-b1]"):
        assert table.count(name) == 2  # one row per run's file
    # Seconds in the files, scaled back to milliseconds by pytest-benchmark: each run's medians are there.
    assert "Name (time in ms)" in table
    for run in (older, newer):
        for record in store.records(run.id)[:2]:
            assert f"{record.latency_ms.p50:.4f}" in table


def test_the_cli_exports_a_named_run(store, tmp_path):
    older = store.runs()[-1]
    out = tmp_path / "older.json"
    result = CliRunner().invoke(app, ["results", "export", "--format", "pytest-benchmark", "--out", str(out),
                                      "--run", older.id, "--store", store.location])
    assert result.exit_code == 0, result.output
    assert f"wrote 2 records to {out}" in result.stderr
    assert json.loads(out.read_text())["commit_info"]["id"] == "aaaa111"
