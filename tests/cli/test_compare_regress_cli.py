"""``edgebench compare`` and ``edgebench regress``: output formats, reports for CI, exit codes."""

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
from typer.testing import CliRunner

import edgebench.cli.compare  # noqa: F401  (registers the sub-commands on app)
import edgebench.cli.regress  # noqa: F401
from edgebench.cli.app import app
from edgebench.errors import UsageError
from edgebench.results.record import Record
from edgebench.results.store import Store
from records import synthetic_record, unique_prefix

runner = CliRunner(env={"COLUMNS": "200"})
SPEEDUP_CELLS = re.compile(r"(\d\.\d\d)x \|?\s*\[(\d\.\d\d), (\d\.\d\d)\]")
ENV = {"host": "bench-a", "packages": {"onnxruntime": "1.31.1"}}


def measured(run_id: str, created_at: str, backend: str, p50: float, seed: int, **overrides) -> Record:
    """A record as the sweep makes one: three processes of lognormal samples around ``p50``."""
    return synthetic_record(run_id, p50, per_process=300, process_factors=(0.998, 1.0, 1.003), seed=seed,
                            created_at=created_at, backend=backend, model_fingerprint="sha256:" + "2" * 64,
                            **{"env": ENV, **overrides})


def make_store(path: Path, runs: list[dict[str, float]], tags: list[dict[str, str]] | None = None,
               envs: list[dict] | None = None, fields: list[dict] | None = None) -> list[str]:
    """One run per ``{backend: p50}``, oldest first, its records with ``fields`` (method,
    machine_id) where given; returns the run ids."""
    ids = []
    with Store.open(path) as store:
        for index, p50s in enumerate(runs):
            run = store.create_run(host="bench-a", git_commit=f"abc{index}", command=["edgebench", "run"],
                                   tags=(tags or [{}] * len(runs))[index])
            for backend, p50 in p50s.items():
                store.add_record(measured(run.id, run.started_at, backend, p50, seed=10 * index + len(backend),
                                          env=(envs or [ENV] * len(runs))[index], **(fields or [{}] * len(runs))[index]))
            store.finish_run(run.id, "finished")
            ids.append(run.id)
    return ids


@pytest.fixture
def backends_store(tmp_path) -> Path:
    path = tmp_path / "store.db"
    make_store(path, [{"eager": 20.0, "onnxruntime": 4.0}])
    return path


@pytest.fixture
def regressed_store(tmp_path) -> Path:
    """Three runs; the last one has onnxruntime 20% slower, eager unchanged, tensorrt new."""
    path = tmp_path / "regressed.db"
    make_store(path, [{"eager": 20.0, "onnxruntime": 4.0}, {"eager": 20.0, "onnxruntime": 4.0},
                      {"eager": 20.0, "onnxruntime": 4.8, "tensorrt": 1.0}])
    return path


def invoke(*args: str):
    return runner.invoke(app, list(args))


# compare


def test_compare_table_shows_the_speedup_and_its_interval(backends_store):
    result = invoke("compare", "--store", str(backends_store), "--baseline", "eager", "--contender", "onnxruntime")
    assert result.exit_code == 0, result.output
    assert "torchvision:resnet18 b1 fp32" in result.stdout
    speedup, low, high = SPEEDUP_CELLS.search(result.stdout).groups()
    assert float(low) < float(speedup) < float(high) and 4.9 <= float(low) and float(high) <= 5.1


def test_compare_json_is_the_pairs_with_intervals(backends_store):
    result = invoke("compare", "--store", str(backends_store), "--baseline", "backend=eager",
                    "--contender", "onnxruntime", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["varied"] == ["backend"] and payload["unpaired"] == []
    (pair,) = payload["pairs"]
    assert pair["speedup"] == pytest.approx(5.0, rel=0.02)
    low, high = pair["speedup_ci95"]
    assert low < pair["speedup"] < high and high / low < 1.05
    assert pair["baseline"]["backend"] == "eager" and len(pair["contender"]["process_p50s_ms"]) == 3


def test_compare_csv_and_markdown(backends_store):
    common = ["compare", "--store", str(backends_store), "--baseline", "eager", "--contender", "onnxruntime"]
    result = invoke(*common, "--format", "csv")
    assert result.exit_code == 0, result.output
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["model"], row["baseline"], row["contender"]) == ("torchvision:resnet18", "eager", "onnxruntime")
    assert float(row["speedup_ci95_low"]) < float(row["speedup"]) < float(row["speedup_ci95_high"])
    result = invoke(*common, "--format", "markdown")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("| model | batch | precision | baseline | contender |")
    assert lines[1].startswith("|---|") and len(lines) == 3 and SPEEDUP_CELLS.search(lines[2])


def test_compare_latest_record_per_key_unless_a_run_is_named(tmp_path):
    path = tmp_path / "store.db"
    first, _ = make_store(path, [{"eager": 20.0, "onnxruntime": 4.0}, {"onnxruntime": 2.0}])
    args = ["compare", "--store", str(path), "--baseline", "eager", "--contender", "onnxruntime", "--json"]
    (latest,) = json.loads(invoke(*args).stdout)["pairs"]
    assert latest["speedup"] == pytest.approx(10.0, rel=0.02)
    (named,) = json.loads(invoke(*args, "--run", first).stdout)["pairs"]
    assert named["speedup"] == pytest.approx(5.0, rel=0.02)


MACHINE_A, MACHINE_B = "a" * 16, "b" * 16


def test_compare_pairs_within_a_machine_and_can_set_two_machines_side_by_side(tmp_path):
    path = tmp_path / "store.db"
    make_store(path, [{"eager": 20.0, "onnxruntime": 4.0}, {"eager": 30.0, "onnxruntime": 3.0}],
               fields=[{"machine_id": MACHINE_A}, {"machine_id": MACHINE_B}])
    per_machine = invoke("compare", "--store", str(path), "--baseline", "eager", "--contender", "onnxruntime",
                         "--format", "csv")
    assert per_machine.exit_code == 0, per_machine.output
    rows = list(csv.DictReader(io.StringIO(per_machine.stdout)))
    assert {row["machine_id"]: round(float(row["speedup"])) for row in rows} == {MACHINE_A: 5, MACHINE_B: 10}
    across = invoke("compare", "--store", str(path), "--baseline", "machine_id=aaaa", "--contender",
                    "machine_id=bbbb", "--json")
    pairs = json.loads(across.stdout)["pairs"]
    assert {p["key"]["backend"]: round(p["speedup"], 1) for p in pairs} == {"eager": 0.7, "onnxruntime": 1.3}


def test_compare_refuses_two_formats_and_an_unknown_one(backends_store):
    common = ["compare", "--store", str(backends_store), "--baseline", "eager", "--contender", "onnxruntime"]
    for extra, message in ((["--json", "--format", "csv"], "two formats"), (["--format", "xml"], "--format takes")):
        result = invoke(*common, *extra)
        assert isinstance(result.exception, UsageError) and message in str(result.exception)


# regress


def test_regress_flags_the_slower_key_and_writes_junit_and_markdown(regressed_store, tmp_path):
    junit, markdown = tmp_path / "ci" / "report.xml", tmp_path / "ci" / "summary.md"
    result = invoke("regress", "--store", str(regressed_store), "--junit", str(junit), "--markdown", str(markdown))
    assert result.exit_code == 1, result.output
    assert "1 regression, 0 failed, 0 improvement, 1 unchanged, 1 new" in result.stdout

    suites = ET.parse(junit).getroot()
    assert suites.tag == "testsuites" and suites.get("tests") == "3" and suites.get("failures") == "1"
    (suite,) = suites.findall("testsuite")
    counts = [suite.get(name) for name in ("tests", "failures", "errors", "skipped")]
    assert counts == ["3", "1", "0", "1"]
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == {f"torchvision:resnet18 b1 {b} fp32 local/default/cpu" for b in ("eager", "onnxruntime",
                                                                                          "tensorrt")}
    failure = cases["torchvision:resnet18 b1 onnxruntime fp32 local/default/cpu"].find("failure")
    assert failure.get("type") == "regression" and "(+20." in failure.get("message")
    assert cases["torchvision:resnet18 b1 tensorrt fp32 local/default/cpu"].find("skipped") is not None
    eager = cases["torchvision:resnet18 b1 eager fp32 local/default/cpu"]
    assert eager.find("failure") is None and eager.find("skipped") is None
    assert {p.get("name") for p in suite.find("properties")} >= {"contender_run", "git_commit", "metric"}

    summary = markdown.read_text().splitlines()
    assert summary[0].startswith("## edgebench regress: 1 regression")
    table = [line for line in summary if line.startswith("|")]
    assert table[0].startswith("| verdict | key | baseline ms | contender ms | change | p |")
    assert len(table) == 2 + 3 and any(line.startswith("| **regression** |") for line in table)


def test_regress_json_and_exit_zero_when_nothing_regressed(regressed_store):
    with Store.open(regressed_store, create=False) as store:
        runs = [run.id for run in store.runs()]
    middle = runs[1]
    result = invoke("regress", "--store", str(regressed_store), "--contender", unique_prefix(middle, runs), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["contender_run"] == middle and payload["failed"] is False
    assert payload["counts"] == {"regression": 0, "failed": 0, "improvement": 0, "unchanged": 2, "new": 0}
    verdict = payload["verdicts"][0]
    assert verdict["noise"] == "processes" and verdict["history_runs"] == 1 and 0 < verdict["p_value"] <= 1


def test_regress_baseline_selector_by_tag(tmp_path):
    path = tmp_path / "store.db"
    make_store(path, [{"eager": 20.0}, {"eager": 25.0}, {"eager": 25.0}], tags=[{"nightly": "2026-11-20"}, {}, {}])
    assert invoke("regress", "--store", str(path)).exit_code == 0
    result = invoke("regress", "--store", str(path), "--baseline", "tag:nightly=2026-11-20", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["verdicts"][0]["outcome"] == "regression"


def test_regress_shows_what_changed_in_the_environment_once_for_all_keys(tmp_path):
    path = tmp_path / "store.db"
    upgraded = {**ENV, "packages": {"onnxruntime": "1.32.0"}}
    make_store(path, [{"eager": 20.0, "onnxruntime": 4.0}] * 2, envs=[ENV, upgraded])
    result = invoke("regress", "--store", str(path))
    assert result.exit_code == 0, result.output
    assert "environment changes (all 2 keys): packages.onnxruntime: 1.31.1 -> 1.32.0" in result.stdout
    payload = json.loads(invoke("regress", "--store", str(path), "--json").stdout)
    assert [v["environment_changes"] for v in payload["verdicts"]] == [["packages.onnxruntime: 1.31.1 -> 1.32.0"]] * 2


def test_regress_judges_the_latest_sweep_run_unless_told_to_judge_paired_records(tmp_path):
    path = tmp_path / "store.db"
    _, sweep, prune = make_store(path, [{"eager": 20.0}, {"eager": 20.0}, {"eager": 40.0}],
                                 fields=[{}, {}, {"method": "paired"}])
    result = invoke("regress", "--store", str(path), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["contender_run"], payload["method"], payload["counts"]["unchanged"]) == (sweep, "sweep", 1)
    paired = json.loads(invoke("regress", "--store", str(path), "--method", "paired", "--json").stdout)
    assert (paired["contender_run"], paired["verdicts"][0]["outcome"]) == (prune, "new")
    assert "1 unchanged, 0 new (sweep records, p50" in invoke("regress", "--store", str(path)).stdout


# the installed command: exit codes, and errors as one line


def edgebench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgebench", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("edgebench: error: ")
    for fragment in fragments:
        assert fragment in line


def test_regress_command_exit_codes(regressed_store, tmp_path):
    assert edgebench("regress", "--store", str(regressed_store)).returncode == 1
    with Store.open(regressed_store, create=False) as store:
        newest = [run.id for run in store.runs()]
    assert edgebench("regress", "--store", str(regressed_store), "--contender", newest[1]).returncode == 0
    assert_one_line_error(edgebench("regress", "--store", str(regressed_store), "--contender", "1999"),
                          "no run '1999'", "newest runs: " + ", ".join(newest))
    empty = tmp_path / "empty.db"
    Store.open(empty).close()
    assert_one_line_error(edgebench("regress", "--store", str(empty)), "has no runs")
    assert_one_line_error(edgebench("regress", "--store", str(regressed_store), "--method", "search"),
                          "unknown method 'search'; use one of sweep, paired")


def test_compare_command_exit_codes(backends_store):
    ok = edgebench("compare", "--store", str(backends_store), "--baseline", "eager", "--contender", "onnxruntime")
    assert ok.returncode == 0, ok.stderr
    assert_one_line_error(
        edgebench("compare", "--store", str(backends_store), "--baseline", "eager", "--contender", "tensorrt"),
        "selector 'tensorrt' matches no record", "backends: eager, onnxruntime",
    )
