"""The spool: a run whose PostgreSQL server is unreachable, at the start or mid-run, keeps every
record in a local SQLite spool, and ``edgebench results push`` uploads it once, however often
it is run and wherever a push before it failed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgebench.results.location import StoreUnreachable
from edgebench.results.push import push
from edgebench.results.spool import RunWriter
from edgebench.results.store import Store
from edgebench.session import available_definition, run_session

from postgres import start_postgres_or_skip
from records import synthetic_record

UNREACHABLE = "postgresql://bench:s3cret@127.0.0.1:1/results"  # nothing listens on port 1


@pytest.fixture
def spool(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "spool.db"
    monkeypatch.setenv("EDGEBENCH_SPOOL", str(path))
    return path


@pytest.fixture
def own_server():
    """A server of this test's own, which it may take down and bring back."""
    server = start_postgres_or_skip()
    yield server
    server.stop()


def records_of(location, **opened) -> list[tuple[str, str, list[str]]]:
    """(run id, status, models of its records) per run, oldest first."""
    with Store.open(location, create=False, **opened) as store:
        return [(run.id, run.status, [record.model for record in store.records(run.id)])
                for run in reversed(store.runs())]


def write_run(writer: RunWriter, models: list[str], *, finish: bool = True) -> str:
    run = writer.start(host="bench-a", git_commit=None, command=["edgebench", "run"])
    for model in models:
        writer.add_record(synthetic_record(run.id, model=model, per_process=50))
    if finish:
        writer.finish("finished")
    return run.id


def test_a_run_whose_server_is_unreachable_goes_on_in_the_spool_and_push_uploads_it(spool, postgres_url,
                                                                                     monkeypatch, tmp_path):
    lines = []
    monkeypatch.chdir(tmp_path)
    with run_session(UNREACHABLE, log=lines.append, command=["bench"]) as session:
        local = available_definition("local")
        with session.stage(local, local.default_device, measure_power=False):
            for model in ("a", "b"):
                session.keep(synthetic_record(session.run_id, model=model, per_process=50))
    (line,) = lines
    assert line.startswith("cannot reach results store postgresql://bench:***@127.0.0.1:1/results: ")
    assert f"this run goes on in the spool {spool}" in line
    assert f"`edgebench results push --spool {spool} --store postgresql://bench:***@127.0.0.1:1/results`" in line
    assert "s3cret" not in line
    assert session.interrupted_line().startswith(f"interrupted: 2 record(s) kept in {spool} under run")
    assert records_of(spool) == [(session.run_id, "finished", ["a", "b"])]

    with Store.open(spool, create=False) as source, Store.open(postgres_url) as target:
        summary = push(source, target)
    assert (summary.runs, summary.records, summary.already_there) == (1, 2, 0)
    assert records_of(postgres_url) == [(session.run_id, "finished", ["a", "b"])]
    assert records_of(spool) == []  # the pushed run left the spool


def test_a_server_lost_mid_run_keeps_every_record_once(spool, own_server):
    url, lines = own_server.create_database("lab"), []
    with RunWriter(url, lines.append) as writer:
        run_id = writer.start(host="bench-a", git_commit=None, command=["edgebench", "run"]).id
        writer.add_record(synthetic_record(run_id, model="before-1", per_process=50))
        writer.add_record(synthetic_record(run_id, model="before-2", per_process=50))
        own_server.halt()
        writer.add_record(synthetic_record(run_id, model="after-1", per_process=50))
        assert writer.location == str(spool)
        writer.add_record(synthetic_record(run_id, model="after-2", per_process=50))
        writer.finish("finished")
    (line,) = lines
    assert line.startswith(f"lost results store {url}: ") and "goes on in the spool" in line
    assert records_of(spool) == [(run_id, "finished", ["after-1", "after-2"])]

    own_server.start()
    assert records_of(url) == [(run_id, "running", ["before-1", "before-2"])]
    with Store.open(spool, create=False) as source, Store.open(url) as target:
        push(source, target)
    assert records_of(url) == [(run_id, "finished", ["before-1", "before-2", "after-1", "after-2"])]


def spooled_runs(spool: Path, count: int) -> list[str]:
    with RunWriter(UNREACHABLE, lambda line: None) as writer:
        first = write_run(writer, [f"r0-{index}" for index in range(3)])
    ids = [first]
    for run in range(1, count):
        with RunWriter(UNREACHABLE, lambda line: None) as writer:
            ids.append(write_run(writer, [f"r{run}-{index}" for index in range(3)]))
    return ids


def test_pushing_the_same_spool_twice_leaves_one_copy(spool, postgres_url, tmp_path):
    ids = spooled_runs(spool, 2)
    kept = tmp_path / "spool-copy.db"
    shutil.copy(spool, kept)  # the spool as it was before the first push
    with Store.open(spool, create=False) as source, Store.open(postgres_url) as target:
        push(source, target)
    with Store.open(kept, create=False) as source, Store.open(postgres_url) as target:
        again = push(source, target)
    assert (again.runs, again.records, again.already_there) == (2, 0, 6)
    assert records_of(postgres_url) == [(ids[0], "finished", ["r0-0", "r0-1", "r0-2"]),
                                        (ids[1], "finished", ["r1-0", "r1-1", "r1-2"])]


def test_a_push_that_fails_half_way_and_is_run_again_uploads_each_record_once(spool, postgres_url, monkeypatch):
    ids = spooled_runs(spool, 2)
    stored = []
    real_add = Store.add_record

    def failing_after_four(store, record, *, uid=None):
        if store.location != str(spool) and len(stored) == 4:
            raise StoreUnreachable(f"lost results store {store.location}: the network went away")
        added = real_add(store, record, uid=uid)
        stored.append(record.model)
        return added

    monkeypatch.setattr(Store, "add_record", failing_after_four)
    with Store.open(spool, create=False) as source, Store.open(postgres_url) as target:
        with pytest.raises(StoreUnreachable):
            push(source, target)
    # The first run went up whole and left the spool; the second is half there, still running.
    assert records_of(postgres_url) == [(ids[0], "finished", ["r0-0", "r0-1", "r0-2"]), (ids[1], "running", ["r1-0"])]
    assert [run_id for run_id, _, _ in records_of(spool)] == [ids[1]]

    monkeypatch.undo()
    with Store.open(spool, create=False) as source, Store.open(postgres_url) as target:
        summary = push(source, target)
    assert (summary.runs, summary.records, summary.already_there) == (1, 2, 1)
    assert records_of(postgres_url) == [(ids[0], "finished", ["r0-0", "r0-1", "r0-2"]),
                                        (ids[1], "finished", ["r1-0", "r1-1", "r1-2"])]
    assert records_of(spool) == []


def test_a_run_still_being_written_is_pushed_and_stays_in_the_spool(spool, postgres_url):
    with RunWriter(UNREACHABLE, lambda line: None) as writer:
        run_id = write_run(writer, ["a"], finish=False)
        with Store.open(spool, create=False) as source, Store.open(postgres_url) as target:
            summary = push(source, target)
        writer.add_record(synthetic_record(run_id, model="b", per_process=50))
        writer.finish("finished")
    assert summary.still_running == 1
    with Store.open(spool, create=False) as source, Store.open(postgres_url) as target:
        push(source, target)
    assert records_of(postgres_url) == [(run_id, "finished", ["a", "b"])]
    assert records_of(spool) == []


def test_the_push_command_reports_what_it_uploaded(spool, postgres_url, cli):
    spooled_runs(spool, 1)
    pushed = cli("results", "push", "--store", postgres_url)  # the spool from $EDGEBENCH_SPOOL
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stderr.strip() == f"pushed 1 run(s), 3 new record(s) from {spool} to {postgres_url}"
    again = cli("results", "push", "--spool", str(spool), "--store", postgres_url)
    assert again.stderr.strip() == f"pushed 0 run(s), 0 new record(s) from {spool} to {postgres_url}"


def test_the_push_command_refuses_in_one_line(spool, cli, tmp_path):
    missing = cli("results", "push", "--spool", str(tmp_path / "none.db"), "--store", str(tmp_path / "s.db"))
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        f"edgebench: error: no spool at {tmp_path / 'none.db'}: nothing to push"]
    spooled_runs(spool, 1)
    unreachable = cli("results", "push", "--store", UNREACHABLE)
    assert unreachable.returncode == 2 and "Traceback" not in unreachable.stderr
    (line,) = unreachable.stderr.strip().splitlines()
    assert "cannot reach results store postgresql://bench:***@127.0.0.1:1/results" in line and "s3cret" not in line
    assert len(records_of(spool)) == 1  # nothing lost


def test_the_store_defaults_to_edgebench_store(postgres_url, cli, monkeypatch):
    with Store.open(postgres_url) as store:
        run = store.create_run(host="bench-a", git_commit=None, command=["x"])
    monkeypatch.setenv("EDGEBENCH_STORE", postgres_url)
    listed = cli("results", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert run.id in listed.stdout
    assert "EDGEBENCH_STORE" in cli("results", "list", "--help").stdout
