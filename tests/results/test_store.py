"""The results store, on SQLite and on PostgreSQL: locations, runs, records, crash safety and
schema upgrades. Tests taking ``store_location`` run on both."""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import zlib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sqlalchemy import text

from edgebench.errors import UsageError
from edgebench.results import migrations
from edgebench.results.location import StoreUnreachable, store_location as parse_location
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


def rows_in(location: str, query: str) -> list[tuple]:
    """Rows read behind the store's back, from a SQLite file or a PostgreSQL database."""
    engine = parse_location(location).engine()
    try:
        with engine.begin() as connection:
            return [tuple(row) for row in connection.execute(text(query))]
    finally:
        engine.dispose()


def write_in(location: str, statement: str) -> None:
    engine = parse_location(location).engine()
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def schema_version_in(location) -> str:
    return rows_in(str(location), "SELECT value FROM meta WHERE key = 'schema_version'")[0][0]


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
    "url, reason",
    [("mysql://db/bench", "give a SQLite file path"), ("sqlite://", "give a SQLite file path"),
     ("postgresql://user:s3cret@db.example/", "name the server and the database"),
     ("postgresql://user:s3cret@db.example:port/bench", "not a valid URL")],
)
def test_other_urls_are_refused_in_one_line_without_the_password(url, reason, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=reason) as excinfo:
        Store.open(url)
    assert "s3cret" not in str(excinfo.value) and "\n" not in str(excinfo.value)
    assert list(tmp_path.iterdir()) == []


def test_postgresql_urls_use_the_psycopg_3_driver():
    for url in ("postgresql://u@h:5433/bench", "postgres://u@h:5433/bench", "postgresql+psycopg://u@h:5433/bench"):
        assert parse_location(url).url.drivername == "postgresql+psycopg"


def test_an_unreachable_server_is_one_line_without_the_password():
    with pytest.raises(StoreUnreachable) as excinfo:
        Store.open("postgresql://bench:s3cret@127.0.0.1:1/results")  # nothing listens on port 1
    message = str(excinfo.value)
    assert message.startswith("cannot reach results store postgresql://bench:***@127.0.0.1:1/results: ")
    assert "s3cret" not in message and "\n" not in message


def test_a_missing_database_is_refused_not_taken_for_an_unreachable_server(postgres_url):
    url = postgres_url.replace("postgres@", "postgres:s3cret@").rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(UsageError) as excinfo:
        Store.open(url)
    assert not isinstance(excinfo.value, StoreUnreachable)
    message = str(excinfo.value)
    assert 'database "no_such_database" does not exist' in message
    assert "s3cret" not in message and "\n" not in message


def test_an_empty_database_is_not_made_a_store_when_reading(postgres_url):
    with pytest.raises(UsageError, match="holds no results store"):
        Store.open(postgres_url, create=False)
    assert rows_in(postgres_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_a_database_holding_other_tables_is_not_mistaken_for_a_store(postgres_url):
    write_in(postgres_url, "CREATE TABLE things (x int)")
    with pytest.raises(UsageError, match="not an edgebench results store"):
        Store.open(postgres_url)


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


def test_run_ids_sort_by_utc_start_time(store_location):
    with Store.open(store_location) as store:
        run = new_run(store)
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", run.id)
    assert run.id[:15] == run.started_at[:19].replace("-", "").replace(":", "").replace("T", "-")
    assert run.started_at.endswith("+00:00")


def test_run_lifecycle_round_trips_every_field(store_location):
    with Store.open(store_location) as store:
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


def test_finish_run_refuses_unknown_runs_and_non_final_statuses(store_location):
    with Store.open(store_location) as store:
        run = new_run(store)
        with pytest.raises(UsageError, match="no run 'nope'"):
            store.finish_run("nope", "finished")
        with pytest.raises(ValueError, match="running"):
            store.finish_run(run.id, "running")
        assert store.get_run(run.id).status == "running"


def test_runs_are_listed_newest_first(store_location):
    with Store.open(store_location) as store:
        assert store.runs() == []
        assert store.latest_run_id() is None
        created = [new_run(store, host=f"host-{index}") for index in range(3)]
        listed = store.runs()
        latest = store.latest_run_id()
    assert [run.id for run in listed] == [run.id for run in reversed(created)]
    assert latest == created[-1].id


def test_a_unique_id_prefix_selects_a_run(store_location):
    with Store.open(store_location) as store:
        first, second = new_run(store), new_run(store)
        assert store.get_run(second.id[:-1]).id == second.id
        assert store.get_run(first.id).id == first.id


def test_an_ambiguous_prefix_lists_the_candidates(store_location):
    with Store.open(store_location) as store:
        first, second = new_run(store), new_run(store)
        with pytest.raises(UsageError, match="ambiguous") as excinfo:
            store.get_run(first.id[:8])  # the date: shared by both runs
    assert first.id in str(excinfo.value) and second.id in str(excinfo.value)


def test_an_unknown_run_names_the_newest_runs(store_location):
    with Store.open(store_location) as store:
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


def test_records_come_back_equal_with_their_samples(store_location):
    samples = [0.1, 1 / 3, 1e-9, 12345.678, 2.0**-30]
    with Store.open(store_location) as store:
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


def test_records_are_selected_by_run_in_insertion_order(store_location):
    with Store.open(store_location) as store:
        first, second = new_run(store), new_run(store)
        for model in ("a", "b", "c"):
            store.add_record(make_record(first.id if model != "b" else second.id, model=model))
        assert [record.model for record in store.records()] == ["a", "b", "c"]
        assert [record.model for record in store.records(first.id)] == ["a", "c"]
        assert [record.model for record in store.records(second.id[:-1])] == ["b"]
        with pytest.raises(UsageError, match="no run"):
            store.records("nope")


def test_a_record_of_an_unknown_run_is_refused(store_location):
    with Store.open(store_location) as store:
        with pytest.raises(UsageError, match="no such run"):
            store.add_record(make_record("20240101-000000-000000"))
        assert store.records() == []


def test_the_context_manager_closes_the_store(store_location):
    with Store.open(store_location) as store:
        new_run(store)
    with pytest.raises(RuntimeError, match="is closed"):
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


def test_a_killed_writer_keeps_every_committed_record(store_location, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writer = subprocess.Popen(
        [sys.executable, str(script), store_location], stdout=subprocess.PIPE, text=True
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

    with Store.open(store_location, create=False) as store:
        indexes = [int(record.model.removeprefix("model-")) for record in store.records()]
        (run,) = store.runs()
    assert indexes[: last_committed + 1] == list(range(last_committed + 1))
    assert indexes == list(range(len(indexes)))  # nothing half-written, no gaps
    assert run.status == "running"
    if store_location.endswith(".db"):
        assert sqlite_rows(store_location, "PRAGMA integrity_check") == [("ok",)]


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


def test_a_store_from_a_newer_edgebench_is_refused(store_location):
    Store.open(store_location).close()
    write_in(store_location, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(UsageError, match="written by a newer edgebench.*upgrade") as excinfo:
        Store.open(store_location)
    assert parse_location(store_location).display in str(excinfo.value)
    assert schema_version_in(store_location) == "99"


def test_the_schema_is_made_by_alembic_at_the_head_revision(store_location):
    Store.open(store_location).close()
    assert rows_in(store_location, "SELECT version_num FROM alembic_version") == [
        (migrations.revision_of(migrations.SCHEMA_VERSION),)]
    assert schema_version_in(store_location) == str(migrations.SCHEMA_VERSION)


def test_every_stored_record_has_a_unique_uid(store_location):
    with Store.open(store_location) as store:
        run = new_run(store)
        assert store.add_record(make_record(run.id), uid="a" * 32) is True
        assert store.add_record(make_record(run.id, model="again"), uid="a" * 32) is False  # kept, not doubled
        store.add_record(make_record(run.id, model="m2"))
        stored = store.records_with_uids(run.id)
    assert [(uid == "a" * 32, record.model) for uid, record in stored] == [(True, "torchvision:resnet18"),
                                                                           (False, "m2")]
    assert len({uid for uid, _ in stored}) == 2


def test_a_run_id_taken_in_the_same_second_is_drawn_again(store_location, monkeypatch):
    drawn = iter(["aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr("edgebench.results.store.secrets.token_hex", lambda _: next(drawn))

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)

    monkeypatch.setattr("edgebench.results.store.datetime", Frozen)
    with Store.open(store_location) as store:
        first, second = new_run(store), new_run(store)
        assert [run.id for run in store.runs()] == ["20240501-120000-bbbbbb", "20240501-120000-aaaaaa"]
    assert (first.id, second.id) == ("20240501-120000-aaaaaa", "20240501-120000-bbbbbb")


def _scripts_with(tmp_path: Path, monkeypatch, revision_body: str) -> None:
    """The package's revisions and one more, v(current + 1), as the store's script directory."""
    scripts = tmp_path / "schema"
    shutil.copytree(migrations.SCRIPT_LOCATION, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    current = migrations.SCHEMA_VERSION
    (scripts / "versions" / f"v{current + 1}_test.py").write_text(textwrap.dedent(f"""
        import sqlalchemy as sa
        from alembic import op

        revision = "v{current + 1}"
        down_revision = "v{current}"
        branch_labels = None
        depends_on = None


        def upgrade():
        """) + textwrap.indent(textwrap.dedent(revision_body), "    "))
    monkeypatch.setattr(migrations, "SCRIPT_LOCATION", scripts)
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", current + 1)


def test_an_older_store_is_upgraded_by_the_next_revision(store_location, tmp_path, monkeypatch):
    with Store.open(store_location) as store:
        run = new_run(store)
        store.add_record(make_record(run.id))
    current = migrations.SCHEMA_VERSION
    _scripts_with(tmp_path, monkeypatch, """
        op.create_table("notes", sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id")), sa.Column("text", sa.Text))
    """)
    with Store.open(store_location) as store:
        assert [record.run_id for record in store.records()] == [run.id]
    assert schema_version_in(store_location) == str(current + 1)
    assert rows_in(store_location, "SELECT version_num FROM alembic_version") == [(f"v{current + 1}",)]
    assert rows_in(store_location, "SELECT count(*) FROM notes") == [(0,)]


def test_a_failed_upgrade_leaves_the_store_as_it_was(store_location, tmp_path, monkeypatch):
    Store.open(store_location).close()
    current = migrations.SCHEMA_VERSION
    _scripts_with(tmp_path, monkeypatch, """
        op.create_table("half_done", sa.Column("x", sa.Integer))
        raise RuntimeError("revision failed")
    """)
    with pytest.raises(RuntimeError, match="revision failed"):
        Store.open(store_location)
    assert schema_version_in(store_location) == str(current)
    assert rows_in(store_location, "SELECT version_num FROM alembic_version") == [(f"v{current}",)]
    monkeypatch.undo()
    Store.open(store_location).close()  # no half_done table in the way of anything
    with pytest.raises(Exception):
        rows_in(store_location, "SELECT count(*) FROM half_done")


UPGRADER = textwrap.dedent(
    """
    import sys
    from edgebench.results.store import Store

    Store.open(sys.argv[1]).close()
    """
)


def test_processes_opening_one_new_store_at_once_make_it_once(store_location, tmp_path):
    script = tmp_path / "open.py"
    script.write_text(UPGRADER)
    openers = [subprocess.Popen([sys.executable, str(script), store_location], stderr=subprocess.PIPE, text=True)
               for _ in range(4)]
    errors = [opener.communicate(timeout=240)[1] for opener in openers]
    assert [opener.returncode for opener in openers] == [0] * 4, errors
    assert rows_in(store_location, "SELECT version_num FROM alembic_version") == [
        (migrations.revision_of(migrations.SCHEMA_VERSION),)]
