"""Schema versions read and enforced: every kept fixture store upgrades to the current schema with
``method`` and ``machine_id`` filled; a store or record from a newer edgebench is refused in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgebench.board.machine import machine_identity
from edgebench.errors import UsageError
from edgebench.results import migrations
from edgebench.results.record import Record
from edgebench.results.record_versions import RECORD_SCHEMA_VERSION
from edgebench.results.regress import regress
from edgebench.results.store import Store

from records import synthetic_record
from sqlite_files import sqlite_rows, sqlite_write

DATA = Path(__file__).parent.parent / "data"
FIXTURES = sorted(DATA.glob("store-v*.db"))
LAST_V1_MACHINE = "5f1c0a9e7d3b2a61"  # env.machine_id in store-v1-last.db (make_store_v1_last.py)


def copied(name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    shutil.copy(DATA / name, path)  # a copy: upgrading must never touch the kept file
    return path


def edgebench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgebench", *args], capture_output=True, text=True, timeout=120)


def test_there_is_a_fixture_store_for_every_past_schema_version():
    versions = {int(path.name.split("-")[1].removeprefix("v").removesuffix(".db")) for path in FIXTURES}
    assert versions == set(range(1, migrations.SCHEMA_VERSION))


@pytest.mark.parametrize("fixture", [path.name for path in FIXTURES])
def test_every_fixture_store_upgrades_and_its_records_read_back_with_method_and_machine(fixture, tmp_path):
    path = copied(fixture, tmp_path)
    with Store.open(path, create=False) as store:
        records = store.records()
        runs = store.runs()
    assert records and all(record.method in ("sweep", "paired") for record in records)
    assert all(record.machine_id for record in records)
    assert sqlite_rows(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(migrations.SCHEMA_VERSION),)]
    # The key columns and the stored JSON agree, and the JSON is rewritten at the current version.
    stored = sqlite_rows(path, "SELECT method, machine_id, record FROM results ORDER BY id")
    assert [(method, machine) for method, machine, _ in stored] == [(r.method, r.machine_id) for r in records]
    assert {json.loads(text)["schema_version"] for _, _, text in stored} == {RECORD_SCHEMA_VERSION}
    assert all(run.methods and run.machine_ids for run in runs)


def test_a_v1_record_without_a_machine_id_gets_one_from_its_run_and_env(tmp_path):
    with Store.open(copied("store-v1.db", tmp_path), create=False) as store:
        (run,) = store.runs()
        ok, error = store.records(run.id)
    # The record's env says nothing of the machine: the run's host and env stand in.
    expected = machine_identity({**run.env, "host": "bench-host", **ok.env})
    assert (ok.method, ok.machine_id) == ("sweep", expected)
    assert error.machine_id == expected


def test_the_last_v1_store_keeps_the_workers_machine_id_and_tells_paired_records_apart(tmp_path):
    with Store.open(copied("store-v1-last.db", tmp_path), create=False) as store:
        sweep_run, prune_run = sorted(store.runs(), key=lambda run: run.started_at)
        (swept,) = store.records(sweep_run.id)
        paired = store.records(prune_run.id)
    assert (swept.method, swept.machine_id) == ("sweep", LAST_V1_MACHINE)
    assert [(r.method, r.env["pairing"]["role"]) for r in paired] == [("paired", "reference"), ("paired", "candidate")]
    assert {r.machine_id for r in paired} == {LAST_V1_MACHINE}
    assert (sweep_run.methods, prune_run.methods) == (["sweep"], ["paired"])


def test_after_the_upgrade_regress_judges_the_sweep_run_not_the_newer_prune_run(tmp_path):
    with Store.open(copied("store-v1-last.db", tmp_path), create=False) as store:
        sweep_run = min(store.runs(), key=lambda run: run.started_at)
        report = regress(store)
    assert report.contender_run.id == sweep_run.id
    assert [verdict.contender.method for verdict in report.verdicts] == ["sweep"]


def test_a_record_json_of_version_1_reads_as_the_current_version():
    record = synthetic_record()
    old = record.to_json_dict()
    for name in ("method", "machine_id"):
        del old[name]
    old["schema_version"] = 1
    old["env"] = {**old["env"], "pairing": {"rounds": 10, "role": "reference"}}
    upgraded = Record.model_validate(old)
    assert upgraded.schema_version == RECORD_SCHEMA_VERSION
    assert (upgraded.method, upgraded.machine_id) == ("paired", record.env["machine_id"])


def test_a_record_json_from_a_newer_edgebench_is_refused_in_one_line():
    newer = {**synthetic_record().to_json_dict(), "schema_version": RECORD_SCHEMA_VERSION + 1, "future_field": 1}
    with pytest.raises(UsageError) as excinfo:
        Record.model_validate(newer)
    message = str(excinfo.value)
    assert message == (f"a record was written by a newer edgebench (schema {RECORD_SCHEMA_VERSION + 1}, this one "
                       f"reads up to {RECORD_SCHEMA_VERSION}); upgrade edgebench")


def test_a_store_from_a_newer_edgebench_is_refused_in_one_line_by_the_cli(tmp_path):
    path = copied("store-v1.db", tmp_path)
    Store.open(path).close()
    newer = migrations.SCHEMA_VERSION + 1
    sqlite_write(path, f"UPDATE meta SET value = '{newer}' WHERE key = 'schema_version'")
    completed = edgebench("results", "list", "--store", str(path))
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    (line,) = completed.stderr.strip().splitlines()
    assert str(path) in line
    assert (f"written by a newer edgebench (schema {newer}, this one reads up to {migrations.SCHEMA_VERSION}); "
            "upgrade edgebench") in line


def test_a_stored_record_from_a_newer_edgebench_is_refused_in_one_line_by_the_cli(tmp_path):
    path = copied("store-v1.db", tmp_path)
    with Store.open(path) as store:
        (run,) = store.runs()
    newer = RECORD_SCHEMA_VERSION + 1
    sqlite_write(path, f"UPDATE results SET record = json_set(record, '$.schema_version', {newer}, '$.future_field', 1)")
    completed = edgebench("results", "show", run.id, "--store", str(path))
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr and "validation error" not in completed.stderr
    (line,) = completed.stderr.strip().splitlines()
    assert f"a record in {path} was written by a newer edgebench (schema {newer}" in line
