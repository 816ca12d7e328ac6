"""The SQLite results store: locations, runs, records, crash safety and schema upgrades."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from edgebench.errors import UsageError
from edgebench.results import migrations
from edgebench.results.record import Latency, Record
from edgebench.results.store import Store

from sqlite_files import sqlite_rows, sqlite_write

DATA = Path(__file__).parent.parent / "data"


def make_record(run_id: str, model: str = "torchvision:resnet18", **overrides) -> Record:
    fields = dict(
        run_id=run_id,
        created_at="2024-05-01T12:00:00+00:00",
        model=model,
        model_fingerprint="sha256:" + "0" * 64,
        backend="onnxruntime",
        target="local",
        mode="default",
        device="cpu",
        precision="fp32",
        batch=1,
        method="sweep",
        machine_id="0123456789abcdef",
        status="ok",
        latency_ms=Latency(
            mean=1.1, std=0.1, min=0.9, p50=1.0, p90=1.2, p95=1.3, p99=1.5, max=2.0,
            ci95=(0.95, 1.05),
        ),
        samples_ms=[0.9, 1.0, 1.1, 2.0],
    )
    fields.update(overrides)
    return Record(**fields)


def new_run(store: Store, **overrides):
    fields = dict(host="host-a", git_commit="abc123", command=["edgebench", "run", "m"])
    fields.update(overrides)
    return store.create_run(**fields)


def schema_version_in(path: Path) -> str:
    return sqlite_rows(path, "SELECT value FROM meta WHERE key = 'schema_version'")[0][0]


# Locations


def test_open_creates_parent_directories_and_the_current_schema(tmp_path):
    path = tmp_path / "nested" / "dir" / "edgebench.db"
    Store.open(path).close()
    assert path.is_file()
    assert schema_version_in(path) == str(migrations.SCHEMA_VERSION)
    index_rows = sqlite_rows(path, "SELECT name FROM sqlite_master WHERE type = 'index'")
    indexes = {name for (name,) in index_rows}
    assert {"results_by_key", "results_by_run"} <= indexes
    # The default rollback journal keeps the store a single file.
    assert sqlite_rows(path, "PRAGMA journal_mode") == [("delete",)]


def test_sqlite_urls_name_a_relative_or_absolute_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Store.open("sqlite:///relative/x.db").close()
    Store.open(f"sqlite:///{tmp_path}/absolute.db").close()
    assert (tmp_path / "relative" / "x.db").is_file()
    assert (tmp_path / "absolute.db").is_file()


@pytest.mark.parametrize(
    "url", ["postgresql://user@db.example/bench", "mysql://db/bench", "sqlite://"]
)
def test_other_database_urls_are_refused(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="only SQLite stores are supported in this version"):
        Store.open(url)
    assert list(tmp_path.iterdir()) == []


def test_missing_store_is_not_created_when_reading(tmp_path):
    path = tmp_path / "absent.db"
    with pytest.raises(UsageError, match=f"no results store at {re.escape(str(path))}"):
        Store.open(path, create=False)
    assert not path.exists()


def _garble_header(path: Path) -> None:
    Store.open(path).close()
    data = bytearray(path.read_bytes())
    data[:16] = b"garbage garbage!"
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "spoil",
    [
        lambda path: path.write_text("model,p50\nresnet18,2.5\n" * 50),
        _garble_header,
    ],
    ids=["text-file", "corrupt-header"],
)
def test_a_file_that_is_not_a_store_is_refused_by_name(tmp_path, spoil):
    path = tmp_path / "results.db"
    spoil(path)
    with pytest.raises(UsageError, match=re.escape(str(path))):
        Store.open(path)


def test_another_sqlite_database_is_not_mistaken_for_a_store(tmp_path):
    path = tmp_path / "other.db"
    sqlite_write(path, "CREATE TABLE things (x)")
    with pytest.raises(UsageError, match="not an edgebench results store"):
        Store.open(path)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(UsageError, match="is a directory"):
        Store.open(tmp_path)


# Runs


def test_run_ids_sort_by_utc_start_time(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        run = new_run(store)
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", run.id)
    assert run.id[:15] == run.started_at[:19].replace("-", "").replace(":", "").replace("T", "-")
    assert run.started_at.endswith("+00:00")


def test_run_lifecycle_round_trips_every_field(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        created = new_run(store, tags={"board": "orin"}, env={"cpus": 8, "os": "Linux"})
        store.add_record(make_record(created.id))
        store.add_record(make_record(created.id, model="m2"))
        store.finish_run(created.id, "interrupted")
        run = store.get_run(created.id)
    assert created.status == "running" and created.finished_at is None
    assert run.status == "interrupted"
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert run.record_count == 2
    assert (run.host, run.git_commit) == ("host-a", "abc123")
    assert run.command == ["edgebench", "run", "m"]
    assert run.tags == {"board": "orin"}
    assert run.env == {"cpus": 8, "os": "Linux"}


def test_finish_run_refuses_unknown_runs_and_non_final_statuses(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        run = new_run(store)
        with pytest.raises(UsageError, match="no run 'nope'"):
            store.finish_run("nope", "finished")
        with pytest.raises(ValueError, match="running"):
            store.finish_run(run.id, "running")
        assert store.get_run(run.id).status == "running"


def test_runs_are_listed_newest_first(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        assert store.runs() == []
        assert store.latest_run_id() is None
        created = [new_run(store, host=f"host-{index}") for index in range(3)]
        listed = store.runs()
        latest = store.latest_run_id()
    assert [run.id for run in listed] == [run.id for run in reversed(created)]
    assert latest == created[-1].id


def test_a_unique_id_prefix_selects_a_run(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        first, second = new_run(store), new_run(store)
        assert store.get_run(second.id[:-1]).id == second.id
        assert store.get_run(first.id).id == first.id


def test_an_ambiguous_prefix_lists_the_candidates(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        first, second = new_run(store), new_run(store)
        with pytest.raises(UsageError, match="ambiguous") as excinfo:
            store.get_run(first.id[:8])  # the date: shared by both runs
    assert first.id in str(excinfo.value) and second.id in str(excinfo.value)


def test_an_unknown_run_names_the_newest_runs(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        with pytest.raises(UsageError, match="the store has no runs"):
            store.get_run("2024")
        runs = [new_run(store) for _ in range(7)]
        with pytest.raises(UsageError, match="no run 'nope'") as excinfo:
            store.get_run("nope")
    message = str(excinfo.value)
    assert "\n" not in message
    assert all(run.id in message for run in runs[-5:])
    assert runs[0].id not in message


# Records


def test_records_come_back_equal_with_their_samples(tmp_path):
    samples = [0.1, 1 / 3, 1e-9, 12345.678, 2.0**-30]
    with Store.open(tmp_path / "s.db") as store:
        run = new_run(store)
        record = make_record(run.id, samples_ms=samples, warnings=["thermal"], env={"x": [1, 2]})
        store.add_record(record)
        (stored,) = store.records()
    assert stored == record
    assert stored.samples_ms == samples  # bit-exact, not rounded through text


def test_samples_are_kept_as_compressed_little_endian_float64(tmp_path):
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        run = new_run(store)
        store.add_record(make_record(run.id, samples_ms=[1.5, 2.5]))
        store.add_record(
            make_record(run.id, status="error", error="boom", latency_ms=None, samples_ms=[])
        )
    (with_samples, p50, record_json), (without_samples, no_p50, _) = sqlite_rows(
        path, "SELECT samples, p50_ms, record FROM results ORDER BY id"
    )
    assert struct.unpack("<2d", zlib.decompress(with_samples)) == (1.5, 2.5)
    assert "samples_ms" not in record_json
    assert p50 == 1.0
    assert without_samples is None and no_p50 is None


def test_records_are_selected_by_run_in_insertion_order(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        first, second = new_run(store), new_run(store)
        for model in ("a", "b", "c"):
            store.add_record(make_record(first.id if model != "b" else second.id, model=model))
        assert [record.model for record in store.records()] == ["a", "b", "c"]
        assert [record.model for record in store.records(first.id)] == ["a", "c"]
        assert [record.model for record in store.records(second.id[:-1])] == ["b"]
        with pytest.raises(UsageError, match="no run"):
            store.records("nope")


def test_a_record_of_an_unknown_run_is_refused(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        with pytest.raises(UsageError, match="no such run"):
            store.add_record(make_record("20240101-000000-000000"))
        assert store.records() == []


def test_the_context_manager_closes_the_store(tmp_path):
    with Store.open(tmp_path / "s.db") as store:
        new_run(store)
    with pytest.raises(sqlite3.ProgrammingError):
        store.runs()


WRITER = textwrap.dedent(
    """
    import sys
    from edgebench.results.record import Record
    from edgebench.results.store import Store

    store = Store.open(sys.argv[1])
    run = store.create_run(host="h", git_commit=None, command=["writer"])
    for index in range(1_000_000):
        store.add_record(Record(
            run_id=run.id, created_at="now", model=f"model-{index}", backend="b",
            target="local", mode="default", device="cpu", precision="fp32", batch=1, method="sweep",
            status="ok", samples_ms=[float(i) for i in range(5000)],
        ))
        print(index, flush=True)
    """
)


def test_a_killed_writer_keeps_every_committed_record(tmp_path):
    path = tmp_path / "s.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writer = subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
    )
    last_committed = -1
    for line in writer.stdout:
        last_committed = int(line)
        if last_committed >= 20:
            os.kill(writer.pid, signal.SIGKILL)
            break
    writer.wait()
    writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL, "the writer ended before it was killed"

    with Store.open(path, create=False) as store:
        indexes = [int(record.model.removeprefix("model-")) for record in store.records()]
        (run,) = store.runs()
    assert indexes[: last_committed + 1] == list(range(last_committed + 1))
    assert indexes == list(range(len(indexes)))  # nothing half-written, no gaps
    assert run.status == "running"
    assert sqlite_rows(path, "PRAGMA integrity_check") == [("ok",)]


# Schema versions and upgrades


def test_the_version_1_fixture_still_opens_and_reads(tmp_path):
    path = tmp_path / "store-v1.db"
    shutil.copy(DATA / "store-v1.db", path)  # a copy: upgrading must never touch the fixture
    with Store.open(path, create=False) as store:
        (run,) = store.runs()
        ok, error = store.records(run.id)
    assert (run.status, run.host, run.record_count) == ("finished", "bench-host", 2)
    assert run.tags == {"purpose": "fixture"}
    assert run.command[:2] == ["edgebench", "run"]
    assert (ok.model, ok.status) == ("torchvision:resnet18", "ok")
    assert (ok.latency_ms.p50, ok.latency_ms.ci95) == (2.5, (2.375, 2.75))
    assert ok.samples_ms == [2.5, 2.25, 2.75, 2.5, 3.125, 2.375]
    assert ok.settings.threads == 4 and ok.stability.stop_reason == "max_time"
    assert (error.status, error.batch, error.latency_ms, error.samples_ms) == ("error", 8, None, [])
    assert "HardSwish" in error.error


def test_a_store_from_a_newer_edgebench_is_refused(tmp_path):
    path = tmp_path / "future.db"
    Store.open(path).close()
    sqlite_write(path, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(UsageError, match="written by a newer edgebench.*upgrade") as excinfo:
        Store.open(path)
    assert str(path) in str(excinfo.value)
    assert schema_version_in(path) == "99"


def _add_notes_table(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE notes (run_id TEXT REFERENCES runs(id), text TEXT)")


def test_an_older_store_is_upgraded_step_by_step(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        run = new_run(store)
        store.add_record(make_record(run.id))
    current = migrations.SCHEMA_VERSION
    monkeypatch.setattr(migrations, "STEPS", [*migrations.STEPS, (current, _add_notes_table)])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", current + 1)

    with Store.open(path) as store:
        assert [record.run_id for record in store.records()] == [run.id]
    assert schema_version_in(path) == str(current + 1)
    assert sqlite_rows(path, "SELECT name FROM sqlite_master WHERE name = 'notes'") == [("notes",)]


def _half_done_step(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE half_done (x)")
    raise RuntimeError("step failed")


def test_a_failed_upgrade_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    Store.open(path).close()
    current = migrations.SCHEMA_VERSION
    monkeypatch.setattr(migrations, "STEPS", [*migrations.STEPS, (current, _half_done_step)])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", current + 1)
    with pytest.raises(RuntimeError, match="step failed"):
        Store.open(path)
    assert schema_version_in(path) == str(current)
    assert sqlite_rows(path, "SELECT name FROM sqlite_master WHERE name = 'half_done'") == []


def test_a_missing_upgrade_step_is_an_error_not_a_silent_skip(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    Store.open(path).close()
    current = migrations.SCHEMA_VERSION
    monkeypatch.setattr(migrations, "STEPS", [*migrations.STEPS, (current, _add_notes_table)])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", current + 2)
    with pytest.raises(RuntimeError, match=f"no migration step from schema version {current + 1}"):
        Store.open(path)
    assert schema_version_in(path) == str(current)
