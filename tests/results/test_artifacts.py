"""The artifact store: what a run measured is kept by content beside the store, listed in each
record, given back intact, and removed by ``results gc`` only outside the retention policy."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from edgebench.errors import UsageError
from edgebench.models.fingerprint import files_fingerprint
from edgebench.results import artifacts as artifacts_module
from edgebench.results import migrations
from edgebench.results.artifacts import ArtifactStore, Retention, artifacts_dir, collect
from edgebench.results.location import store_location as parse_location
from edgebench.results.record import Artifact
from edgebench.results.record_versions import RECORD_SCHEMA_VERSION
from edgebench.results.store import Store

from onnx_models import conv_stack
from records import add_run, synthetic_record

DATA = Path(__file__).parent.parent / "data"
FAST = ["--min-time", "0.2", "--max-time", "1", "--warmup", "0.05", "--min-iterations", "5", "--threads", "1",
        "--processes", "1", "--no-power"]
NOW = datetime(2025, 6, 30, 12, tzinfo=timezone.utc)


def aged(path: Path, seconds: float = 2 * artifacts_module.GRACE_S) -> None:
    """Make a kept file look written ``seconds`` ago: gc spares what was kept within its grace period."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def kept_file(artifacts: ArtifactStore, tmp_path: Path, content: bytes, name: str = "m.onnx") -> Artifact:
    source = tmp_path / "sources" / name
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(content)
    artifact = artifacts.keep("model", source)
    aged(artifacts.object_path(artifact.digest))
    return artifact


# Where the files go


def test_the_artifacts_of_a_sqlite_store_lie_beside_it_and_the_environment_names_another_place(tmp_path,
                                                                                                monkeypatch):
    monkeypatch.delenv(artifacts_module.ARTIFACTS_ENV, raising=False)
    assert artifacts_dir(tmp_path / "r.db") == tmp_path / "r.db.artifacts"
    assert artifacts_dir(f"sqlite:///{tmp_path}/r.db") == tmp_path / "r.db.artifacts"
    assert artifacts_dir("postgresql://bench@db.lab:5432/results") == Path("results") / "artifacts"
    assert artifacts_dir(":memory:") is None
    monkeypatch.setenv(artifacts_module.ARTIFACTS_ENV, str(tmp_path / "elsewhere"))
    assert artifacts_dir(":memory:") == artifacts_dir(tmp_path / "r.db") == tmp_path / "elsewhere"


# Keeping and giving back


def test_a_file_is_kept_once_by_its_content_whatever_its_name(tmp_path):
    artifacts = ArtifactStore(tmp_path / "a")
    one, two = (kept_file(artifacts, tmp_path, b"same bytes", name) for name in ("x.onnx", "y.onnx"))
    other = kept_file(artifacts, tmp_path, b"other bytes")
    assert one.digest == two.digest == files_fingerprint([tmp_path / "sources" / "x.onnx"])
    assert (one.name, two.name, one.size) == ("x.onnx", "y.onnx", len(b"same bytes"))
    assert sorted(digest for digest, _ in artifacts.objects()) == sorted({one.digest, other.digest})


def test_an_interrupted_copy_leaves_no_object_and_no_temporary_file(tmp_path, monkeypatch):
    source = tmp_path / "m.onnx"
    source.write_bytes(b"x" * 1000)
    artifacts = ArtifactStore(tmp_path / "a")

    def copy_half(src, dst):
        Path(dst).write_bytes(Path(src).read_bytes()[:500])
        raise KeyboardInterrupt

    monkeypatch.setattr(artifacts_module.shutil, "copyfile", copy_half)
    with pytest.raises(KeyboardInterrupt):
        artifacts.keep("model", source)
    assert [path for path in (tmp_path / "a").rglob("*") if path.is_file()] == []
    monkeypatch.undo()
    artifact = artifacts.keep("model", source)  # the next run keeps it whole
    assert artifacts.object_path(artifact.digest).read_bytes() == source.read_bytes()


def test_a_records_files_come_back_under_their_names_checked_against_their_digest(tmp_path):
    artifacts = ArtifactStore(tmp_path / "a")
    model = kept_file(artifacts, tmp_path, b"graph")
    data = kept_file(artifacts, tmp_path, b"weights", "w.bin").model_copy(update={"name": "data/w.bin"})
    record = synthetic_record(artifacts=[model, data])
    written = artifacts.restore(record, "model", tmp_path / "out")
    assert written == [tmp_path / "out" / "m.onnx", tmp_path / "out" / "data" / "w.bin"]
    assert [path.read_bytes() for path in written] == [b"graph", b"weights"]
    with pytest.raises(UsageError, match="kept no engine file \\(roles kept: model\\)"):
        artifacts.restore(record, "engine", tmp_path / "out")
    artifacts.object_path(model.digest).write_bytes(b"graph, damaged")
    with pytest.raises(UsageError, match="damaged"):
        artifacts.restore(record, "model", tmp_path / "again")
    assert not (tmp_path / "again" / "m.onnx").exists()
    artifacts.object_path(model.digest).unlink()
    with pytest.raises(UsageError, match="results gc` removed it"):
        artifacts.restore(record, "model", tmp_path / "again")


def test_a_run_keeps_the_measured_model_beside_the_store_once_for_two_runs(cli, tmp_path):
    model = conv_stack(tmp_path / "net.onnx")
    for _ in range(2):
        run = cli("run", "-m", "net.onnx", "-b", "onnxruntime", "--store", "r.db", *FAST)
        assert run.returncode == 0, run.stderr
    with Store.open(tmp_path / "r.db", create=False) as store:
        first, second = store.records()
    assert first.status == second.status == "ok"
    assert first.model_spec == "net.onnx"
    (artifact,) = second.artifacts
    assert artifact == Artifact(role="model", name="net.onnx", digest=second.model_fingerprint,
                                size=model.stat().st_size)
    assert first.artifacts == second.artifacts
    artifacts = ArtifactStore.beside(tmp_path / "r.db")
    assert artifacts.root == tmp_path / "r.db.artifacts" and len(artifacts.objects()) == 1
    (restored,) = artifacts.restore(second, "model", tmp_path / "back")
    assert restored.read_bytes() == model.read_bytes()


# gc


def night(store, artifact, days_ago: float, spec: str = "net.onnx", fingerprint: str = "sha256:" + "1" * 64):
    created = (NOW - timedelta(days=days_ago)).isoformat()
    return add_run(store, lambda run_id, _: [synthetic_record(run_id, created_at=created, model_spec=spec,
                                                              model_fingerprint=fingerprint, artifacts=[artifact],
                                                              per_process=20)])


def left(artifacts: ArtifactStore, *kept: Artifact) -> bool:
    return {digest for digest, _ in artifacts.objects()} == {artifact.digest for artifact in kept}


def test_gc_keeps_the_files_of_records_within_the_policy_and_removes_the_rest(store_location, tmp_path):
    artifacts = ArtifactStore(tmp_path / "a")
    old, recent, newest, other, orphan = (kept_file(artifacts, tmp_path, f"model {n}".encode()) for n in range(5))
    with Store.open(store_location) as store:
        night(store, old, days_ago=30)
        night(store, recent, days_ago=3, fingerprint="sha256:" + "2" * 64)  # the same name, a changed model
        night(store, newest, days_ago=1)
        night(store, other, days_ago=30, spec="other.onnx")
        records = store.records(with_samples=False)
    assert records[0].samples_ms == [] and records[0].artifacts == [old]

    everything = collect(artifacts, records, Retention(), now=NOW)
    assert everything.removed == [(orphan.digest, orphan.size)]  # no record lists it
    assert left(artifacts, old, recent, newest, other)

    dry = collect(artifacts, records, Retention(keep_days=7), dry_run=True, now=NOW)
    assert sorted(dry.removed) == sorted([(old.digest, old.size), (other.digest, other.size)])
    assert dry.line(artifacts.root).startswith(f"would remove 2 object(s), 0.0 MB, from {artifacts.root} "
                                               "(2 record(s) outside the policy); kept 2 object(s)")
    assert left(artifacts, old, recent, newest, other)  # a dry run removes nothing

    # Two newest per key, a key being the model's name: the changed model counts as the same key.
    by_count = collect(artifacts, records, Retention(keep_last=2), now=NOW)
    assert by_count.removed == [(old.digest, old.size)]
    assert left(artifacts, recent, newest, other)

    either = collect(artifacts, records, Retention(keep_days=2, keep_last=1), now=NOW)
    assert [digest for digest, _ in either.removed] == [recent.digest]
    assert left(artifacts, newest, other)


def test_gc_spares_files_kept_within_the_grace_period_and_clears_unfinished_copies(tmp_path):
    artifacts = ArtifactStore(tmp_path / "a")
    source = tmp_path / "m.onnx"
    source.write_bytes(b"kept just now, its record not stored yet")
    fresh = artifacts.keep("model", source)
    stale_temp = artifacts.object_path(fresh.digest).with_name(".abandoned.123")
    stale_temp.write_bytes(b"half")
    aged(stale_temp)
    collection = collect(artifacts, [], Retention(), now=NOW)
    assert collection.removed == [] and collection.leftovers == 1
    assert left(artifacts, fresh) and not stale_temp.exists()
    aged(artifacts.object_path(fresh.digest))
    artifacts.keep("model", source)  # reused by a new measurement: its grace starts again
    assert collect(artifacts, [], Retention(), now=NOW).removed == []


def test_results_gc_prints_what_it_freed_and_refuses_an_in_memory_store(cli, tmp_path, monkeypatch):
    monkeypatch.delenv(artifacts_module.ARTIFACTS_ENV, raising=False)
    artifacts = ArtifactStore.beside(tmp_path / "r.db")
    listed, orphan = (kept_file(artifacts, tmp_path, content) for content in (b"listed", b"orphan"))
    with Store.open(tmp_path / "r.db") as store:
        night(store, listed, days_ago=1)
    dry = cli("results", "gc", "--store", "r.db", "--dry-run")
    assert (dry.returncode, dry.stderr.startswith("would remove 1 object(s)")) == (0, True), dry.stderr
    assert left(artifacts, listed, orphan)
    done = cli("results", "gc", "--store", "r.db", "--keep-last", "1")
    assert done.returncode == 0 and done.stderr.startswith("removed 1 object(s)")
    assert left(artifacts, listed)
    memory = cli("results", "gc", "--store", ":memory:")
    assert memory.returncode == 2
    assert memory.stderr.strip() == ("edgebench: error: an in-memory store keeps no files; set EDGEBENCH_ARTIFACTS "
                                     "to name a directory")


# Older stores


def test_a_store_of_schema_3_reads_back_without_artifacts_and_gc_keeps_nothing_of_it(tmp_path):
    path = tmp_path / "store.db"
    shutil.copy(DATA / "store-v3.db", path)
    with Store.open(path, create=False) as store:
        records = store.records(with_samples=False)
    assert records and all(record.artifacts == [] and record.model_spec is None for record in records)
    assert collect(ArtifactStore(tmp_path / "none"), records, Retention(keep_last=1)).removed == []


def test_revision_4_rewrites_stored_records_at_record_version_3(store_location):
    with Store.open(store_location) as store:
        add_run(store, lambda run_id, _: [synthetic_record(run_id, per_process=20)])
    # Back to how schema 3 left it: version 2 record JSON, revision v3.
    engine = parse_location(store_location).engine()
    with engine.begin() as connection:
        for row_id, stored in connection.execute(text("SELECT id, record FROM results")).all():
            fields = json.loads(stored)
            del fields["model_spec"], fields["artifacts"]
            connection.execute(text("UPDATE results SET record = :record WHERE id = :id"),
                               {"record": json.dumps({**fields, "schema_version": 2}), "id": row_id})
        connection.execute(text("UPDATE alembic_version SET version_num = 'v3'"))
        connection.execute(text("UPDATE meta SET value = '3' WHERE key = 'schema_version'"))
    with Store.open(store_location, create=False) as store:
        (record,) = store.records()
    with engine.begin() as connection:
        (stored,) = connection.execute(text("SELECT record FROM results")).scalars().all()
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert json.loads(stored)["schema_version"] == RECORD_SCHEMA_VERSION == 3
    assert (record.model_spec, record.artifacts, version) == (None, [], migrations.revision_of(4))
