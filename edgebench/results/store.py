"""The results store: runs and their records, in a SQLite file or a PostgreSQL database.

All SQL lives in ``Store`` (over SQLAlchemy Core; the schema is made and upgraded by
``migrations``, the tables mirrored in ``tables``); callers see runs and ``Record`` objects only.
Every write is its own transaction, committed before it returns: a killed benchmark loses at
most the record in flight, and many processes may write one store at once. Each stored record
has a unique ``uid``, so storing it again (``edgebench results push``) leaves one copy.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import struct
import uuid
import zlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Iterable, Literal, Mapping, Optional, Sequence, get_args

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, Insert, delete, func, null, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from edgebench.errors import UsageError
from edgebench.results import migrations
from edgebench.results.key import short_machine_id
from edgebench.results.location import DEFAULT_STORE, StoreLocation, StoreUnreachable, first_line, store_location, \
    unreachable
from edgebench.results.record import Record
from edgebench.results.record_versions import upgrade_record
from edgebench.results.tables import results, runs

# DEFAULT_STORE is re-exported: callers name the default store beside the Store.
__all__ = ["DEFAULT_STORE", "FinalRunStatus", "RunInfo", "RunStatus", "Store", "new_record_uid", "pick_run"]

RunStatus = Literal["running", "finished", "interrupted", "failed"]
FinalRunStatus = Literal["finished", "interrupted", "failed"]

_CANDIDATES_SHOWN = 5
_RUN_ID_ATTEMPTS = 5  # 3 random bytes per second: a collision is rare, five in a row never
_NEWEST_FIRST = (runs.c.started_at.desc(), runs.c.id.desc())


class RunInfo(BaseModel):
    """One invocation of the benchmark: who ran what, where, and how it ended."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    started_at: str
    finished_at: Optional[str] = None
    status: RunStatus
    host: str
    git_commit: Optional[str] = None
    command: list[str]
    tags: dict[str, str] = Field(default_factory=dict)
    env: dict[str, Any] = Field(default_factory=dict)
    record_count: int = 0
    methods: list[str] = Field(default_factory=list, description="how its records were measured")
    machine_ids: list[str] = Field(default_factory=list, description="the machines its records measured")

    @property
    def tags_text(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in sorted(self.tags.items())) or "-"

    def summary_rows(self) -> list[tuple[str, str]]:
        """The run as name/value rows, for `results show` and the report."""
        return [
            ("run", self.id),
            ("status", self.status),
            ("started (UTC)", _timestamp(self.started_at)),
            ("finished (UTC)", _timestamp(self.finished_at)),
            ("host", self.host),
            ("git commit", self.git_commit or "-"),
            ("command", " ".join(self.command)),
            ("tags", self.tags_text),
            ("method", ", ".join(self.methods) or "-"),
            ("machine", ", ".join(short_machine_id(machine) for machine in self.machine_ids) or "-"),
        ]


def _timestamp(iso: Optional[str]) -> str:
    """ISO 8601 UTC to 'YYYY-MM-DD HH:MM:SS'."""
    return "-" if iso is None else iso[:19].replace("T", " ")


def pick_run(candidates: Sequence[RunInfo], id_or_prefix: str, where: Callable[[], str]) -> RunInfo:
    """The candidate whose id is ``id_or_prefix``, else the only one starting with it (like git);
    UsageError when none or several do, with ``where()`` telling what exists."""
    matches = [run for run in candidates if run.id.startswith(id_or_prefix)]
    exact = [run for run in matches if run.id == id_or_prefix]
    if exact or len(matches) == 1:
        return (exact or matches)[0]
    if matches:
        ids = ", ".join(run.id for run in matches)
        raise UsageError(f"run id {id_or_prefix!r} is ambiguous: it matches {ids}")
    raise UsageError(f"no run {id_or_prefix!r}{where()}")


def new_record_uid() -> str:
    """A record's unique id in every store it is copied to."""
    return uuid.uuid4().hex


class Store:
    """Runs and records in a SQLite file or a PostgreSQL database. Open with ``Store.open``; use as
    a context manager."""

    def __init__(self, engine: Engine, where: StoreLocation) -> None:
        self._engine: Optional[Engine] = engine
        self._where = where
        #: How messages name the store: its file, or its URL without the password.
        self.location = where.display

    @classmethod
    def open(cls, location: str | Path, *, create: bool = True) -> Store:
        """Open (and upgrade) the store at ``location``; ``create`` makes a missing one.
        StoreUnreachable when its server cannot be reached; UsageError when it is not a store."""
        where = store_location(location)
        if where.file is not None:
            if not where.file.exists():
                if not create:
                    raise UsageError(f"no results store at {where.file} (`edgebench run` creates it)")
                where.file.parent.mkdir(parents=True, exist_ok=True)
            elif where.file.is_dir():
                raise UsageError(f"results store {where.file} is a directory, not a file")
        engine = where.engine()
        try:
            migrations.upgrade(engine, create=create)
        except DBAPIError as exc:
            engine.dispose()
            if where.is_server and unreachable(exc):
                raise StoreUnreachable(f"cannot reach results store {where.display}: {first_line(exc)}") from exc
            raise UsageError(f"cannot open results store {where.display}: {first_line(exc)}") from exc
        except UsageError as exc:
            engine.dispose()
            raise UsageError(f"cannot open results store {where.display}: {exc}") from exc
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, where)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One transaction, committed when the block ends; a lost server is StoreUnreachable, and
        another failure of the database itself (a full disk, a lock held too long) a UsageError."""
        if self._engine is None:
            raise RuntimeError(f"the results store {self.location} is closed")
        try:
            with self._engine.begin() as connection:
                yield connection
        except DBAPIError as exc:
            if self._where.is_server and unreachable(exc):
                raise StoreUnreachable(f"lost results store {self.location}: {first_line(exc)}") from exc
            if isinstance(exc, OperationalError):
                raise UsageError(f"results store {self.location}: {first_line(exc)}") from exc
            raise

    # Runs

    def create_run(
        self,
        host: str,
        git_commit: str | None,
        command: Iterable[str],
        tags: Mapping[str, str] | None = None,
        env: Mapping[str, Any] | None = None,
    ) -> RunInfo:
        """Record the start of a run; its id sorts by start time (UTC)."""
        attempts = 0
        while True:
            now = datetime.now(timezone.utc)
            run = RunInfo(
                id=now.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3),
                started_at=now.isoformat(timespec="microseconds"),
                status="running",
                host=host,
                git_commit=git_commit,
                command=list(command),
                tags=dict(tags or {}),
                env=dict(env or {}),
            )
            try:
                with self._transaction() as connection:
                    connection.execute(runs.insert().values(_run_row(run)))
                return run
            except IntegrityError:
                # Another writer took this id in the same second: draw another.
                attempts += 1
                if attempts == _RUN_ID_ATTEMPTS:
                    raise

    def put_run(self, run: RunInfo) -> bool:
        """Store ``run`` as it is, under its own id (a run copied from another store); True when
        it was new. A run stored as running takes the final status ``run`` has, if any."""
        with self._transaction() as connection:
            added = connection.execute(self._insert_new(runs, "id").values(_run_row(run))).first() is not None
            if not added and run.status != "running":
                connection.execute(update(runs).where(runs.c.id == run.id, runs.c.status == "running")
                                   .values(status=run.status, finished_at=run.finished_at))
        return added

    def finish_run(self, run_id: str, status: FinalRunStatus) -> None:
        if status not in get_args(FinalRunStatus):
            raise ValueError(f"a run finishes as one of {get_args(FinalRunStatus)}, not {status!r}")
        finished_at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        with self._transaction() as connection:
            updated = connection.execute(update(runs).where(runs.c.id == run_id)
                                         .values(status=status, finished_at=finished_at).returning(runs.c.id)).first()
        if updated is None:
            raise UsageError(f"no run {run_id!r} in {self.location}")

    def delete_run(self, run_id: str) -> None:
        """Remove a run and its records (a spool, once they are pushed)."""
        with self._transaction() as connection:
            connection.execute(delete(results).where(results.c.run_id == run_id))
            connection.execute(delete(runs).where(runs.c.id == run_id))

    def runs(self) -> list[RunInfo]:
        """All runs, newest first, with their record counts."""
        return self._select_runs()

    def latest_run_id(self) -> str | None:
        with self._transaction() as connection:
            return connection.execute(select(runs.c.id).order_by(*_NEWEST_FIRST).limit(1)).scalar()

    def get_run(self, id_or_prefix: str) -> RunInfo:
        """The run with this id, or the only run whose id starts with it (like git)."""
        if not id_or_prefix:
            raise UsageError("empty run id")
        # substr, not LIKE: LIKE ignores case in SQLite and not in PostgreSQL.
        matches = self._select_runs(func.substr(runs.c.id, 1, len(id_or_prefix)) == id_or_prefix)
        return pick_run(matches, id_or_prefix, lambda: f" in {self.location}; {self._newest_ids_hint()}")

    def _select_runs(self, condition: Any = None) -> list[RunInfo]:
        query = select(runs).order_by(*_NEWEST_FIRST)
        # Per run: how many records of each method and machine.
        counts = select(results.c.run_id, results.c.method, results.c.machine_id, func.count()) \
            .group_by(results.c.run_id, results.c.method, results.c.machine_id)
        if condition is not None:
            query = query.where(condition)
            counts = counts.where(results.c.run_id.in_(select(runs.c.id).where(condition)))
        with self._transaction() as connection:
            rows = connection.execute(query).all()
            tallies = connection.execute(counts).all()
        by_run: dict[str, list[Any]] = {}
        for tally in tallies:
            by_run.setdefault(tally.run_id, []).append(tally)
        return [_run_from_row(row, by_run.get(row.id, [])) for row in rows]

    def _newest_ids_hint(self) -> str:
        with self._transaction() as connection:
            ids = connection.execute(select(runs.c.id).order_by(*_NEWEST_FIRST).limit(_CANDIDATES_SHOWN)).scalars()
            shown = list(ids)
        if not shown:
            return "the store has no runs"
        return "newest runs: " + ", ".join(shown)

    # Records

    def add_record(self, record: Record, *, uid: str | None = None) -> bool:
        """Store one record under ``uid`` (a new one when not given); it is committed when this
        returns. False when a record of this uid was stored already: it is kept, not doubled."""
        row = {
            "uid": uid or new_record_uid(),
            "run_id": record.run_id,
            "created_at": record.created_at,
            "model": record.model,
            "model_fingerprint": record.model_fingerprint,
            "backend": record.backend,
            "target": record.target,
            "mode": record.mode,
            "device": record.device,
            "precision": record.precision,
            "batch": record.batch,
            "method": record.method,
            "machine_id": record.machine_id,
            "status": record.status,
            "p50_ms": record.latency_ms.p50 if record.latency_ms else None,
            "record": json.dumps(record.to_json_dict(with_samples=False)),
            "samples": _pack_samples(record.samples_ms),
        }
        try:
            with self._transaction() as connection:
                return connection.execute(self._insert_new(results, "uid").values(row)).first() is not None
        except IntegrityError as exc:
            raise UsageError(
                f"cannot store a record of run {record.run_id!r}: no such run in {self.location}"
            ) from exc

    def records(self, run_id: str | None = None, *, method: str | None = None,
                with_samples: bool = True) -> list[Record]:
        """Records in the order they were stored, samples included unless told; one run's, or all;
        of one measuring method, or of every method."""
        return [record for _, record in self._select_records(run_id, method, with_samples)]

    def records_with_uids(self, run_id: str) -> list[tuple[str, Record]]:
        """One run's records as ``records`` gives them, each with its uid (to copy them elsewhere)."""
        return self._select_records(run_id, None)

    def _select_records(self, run_id: str | None, method: str | None,
                        with_samples: bool = True) -> list[tuple[str, Record]]:
        samples = results.c.samples if with_samples else null()
        query = select(results.c.uid, results.c.record, samples).order_by(results.c.id)
        if run_id is not None:
            query = query.where(results.c.run_id == self.get_run(run_id).id)
        if method is not None:
            query = query.where(results.c.method == method)
        with self._transaction() as connection:
            rows = connection.execute(query).all()
        return [(uid, self._record_from_row(record_json, samples)) for uid, record_json, samples in rows]

    def _record_from_row(self, record_json: str, samples: bytes | None) -> Record:
        # Upgraded here, not by the validator alone, so a refusal names this store.
        fields = upgrade_record(json.loads(record_json), source=f"a record in {self.location}")
        fields["samples_ms"] = _unpack_samples(samples)
        return Record.model_validate(fields)

    def _insert_new(self, table: Any, key: str) -> Insert:
        """An INSERT that leaves a row whose ``key`` is already stored as it is; it returns the key
        when it stored the row, nothing when it did not (rowcount is not told by every driver)."""
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])


def _run_row(run: RunInfo) -> dict[str, Any]:
    return {
        "id": run.id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "status": run.status,
        "host": run.host,
        "git_commit": run.git_commit,
        "command": json.dumps(run.command),
        "tags": json.dumps(run.tags),
        "env": json.dumps(run.env),
    }


def _run_from_row(row: Any, tallies: list[Any]) -> RunInfo:
    return RunInfo(
        id=row.id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=row.status,
        host=row.host,
        git_commit=row.git_commit,
        command=json.loads(row.command),
        tags=json.loads(row.tags),
        env=json.loads(row.env),
        record_count=sum(tally[3] for tally in tallies),
        methods=sorted({tally.method for tally in tallies}),
        machine_ids=sorted({tally.machine_id for tally in tallies if tally.machine_id}),
    )


# Raw samples are kept compact: little-endian float64, zlib-compressed.


def _pack_samples(samples: list[float]) -> bytes | None:
    if not samples:
        return None
    return zlib.compress(struct.pack(f"<{len(samples)}d", *samples))


def _unpack_samples(blob: bytes | None) -> list[float]:
    if blob is None:
        return []
    raw = zlib.decompress(blob)
    return list(struct.unpack(f"<{len(raw) // 8}d", raw))
