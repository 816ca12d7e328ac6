"""``edgebench results list | show | export`` against a copy of the v1 fixture store."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

import edgebench.cli.results  # noqa: F401  (registers the sub-commands on app)
from edgebench.cli.app import app
from edgebench.errors import UsageError
from edgebench.results.store import Store

# Wide enough that rich tables do not truncate cells.
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def run_id(store_path) -> str:
    with Store.open(store_path, create=False) as store:
        return store.latest_run_id()


def invoke(*args: str):
    return runner.invoke(app, ["results", *args])


def test_list_shows_runs_as_a_table(store_path, run_id):
    result = invoke("list", "--store", str(store_path))
    assert result.exit_code == 0, result.output
    assert run_id in result.stdout
    assert "finished" in result.stdout and "bench-host" in result.stdout
    assert "purpose=fixture" in result.stdout


def test_list_and_show_say_how_and_on_which_machine_a_run_measured(store_path, run_id):
    with Store.open(store_path, create=False) as store:
        (machine,) = store.get_run(run_id).machine_ids
    listed = invoke("list", "--store", str(store_path))
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if run_id in line)
    assert "sweep" in row and machine[:8] in row and machine not in row  # shortened
    shown = invoke("show", run_id, "--store", str(store_path))
    assert re.search(rf"machine\s+{machine[:8]} *\n", shown.stdout) and re.search(r"method\s+sweep", shown.stdout)


def test_list_json_gives_run_infos_with_record_counts(store_path, run_id):
    result = invoke("list", "--store", f"sqlite:///{store_path}", "--json")
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)
    assert (run["id"], run["record_count"], run["status"]) == (run_id, 2, "finished")


def test_list_of_an_empty_store_says_so(tmp_path):
    path = tmp_path / "empty.db"
    Store.open(path).close()
    result = invoke("list", "--store", str(path))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no runs in" in result.stderr


def test_show_accepts_a_unique_prefix_and_tabulates_records(store_path, run_id):
    result = invoke("show", run_id[:-3], "--store", str(store_path))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert run_id in out
    assert "edgebench run torchvision:resnet18" in out  # the command
    assert "torchvision:resnet18" in out and "torchvision:mobilenet_v3_small" in out
    assert "p50 ms" in out and "95% CI" in out
    assert "2.500" in out and "±7.5%" in out  # p50, half its interval [2.375, 2.750] relative to it
    assert "3.100" in out and "400.0" in out  # p99, throughput
    assert "quantization of HardSwish is not supported" in out  # the error line


def test_show_json_prints_the_records_without_raw_samples(store_path, run_id):
    result = invoke("show", run_id, "--store", str(store_path), "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [record["status"] for record in records] == ["ok", "error"]
    assert records[0]["latency_ms"]["p50"] == 2.5
    assert all("samples_ms" not in record for record in records)


def test_export_writes_the_file_and_reports_on_stderr(store_path, tmp_path, run_id):
    out = tmp_path / "exports" / "records.csv"
    result = invoke(
        "export", "--format", "csv", "--out", str(out), "--run", run_id, "--store", str(store_path)
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 2
    assert f"wrote 2 records to {out}" in result.stderr
    assert result.stdout == ""


def test_export_of_nothing_writes_an_empty_file_with_a_note(store_path, tmp_path):
    with Store.open(store_path) as store:
        empty = store.create_run(host="h", git_commit=None, command=["edgebench", "run"])
    out = tmp_path / "empty.json"
    result = invoke(
        "export", "--format", "json", "--out", str(out), "--run", empty.id,
        "--store", str(store_path),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == []
    assert "note: no records to export" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["list", "--store", "{missing}"], "no results store at"),
        (["show", "nope", "--store", "{store}"], "no run 'nope'"),
        (["list", "--store", "mysql://db/bench"], "give a SQLite file path (or sqlite:///path) or a postgresql://"),
        (
            ["export", "--format", "xml", "--out", "{out}", "--store", "{store}"],
            "unknown export format 'xml'",
        ),
    ],
    ids=["missing-store", "unknown-run", "other-url", "unknown-format"],
)
def test_expected_failures_are_usage_errors(store_path, tmp_path, args, message):
    paths = {"missing": tmp_path / "missing.db", "store": store_path, "out": tmp_path / "out.xml"}
    result = invoke(*[arg.format(**paths) for arg in args])
    assert isinstance(result.exception, UsageError), result.output
    assert message in str(result.exception)
    assert not paths["missing"].exists() and not paths["out"].exists()


def test_an_unknown_run_exits_2_with_one_line_naming_existing_runs(store_path, run_id):
    completed = subprocess.run(
        [sys.executable, "-m", "edgebench", "results", "show", "nope", "--store", str(store_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("edgebench: error: no run 'nope'")
    assert run_id in lines[0]
