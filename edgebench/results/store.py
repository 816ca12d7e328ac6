"""The results store: runs and their records, kept in one SQLite file.

All SQL lives in ``Store`` (and the schema steps in ``migrations``); callers see runs and
``Record`` objects only, so a server database can later sit behind the same methods.
Every write commits at once: a killed benchmark loses at most the record in flight.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import struct
import zlib
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Iterable, Literal, Mapping, Optional, Sequence, get_args

from pydantic import BaseModel, ConfigDict, Field

from edgebench.errors import UsageError
from edgebench.results import migrations
from edgebench.results.key import short_machine_id
from edgebench.results.record import Record
from edgebench.results.record_versions import upgrade_record

RunStatus = Literal["running", "finished", "interrupted", "failed"]
FinalRunStatus = Literal["finished", "interrupted", "failed"]

DEFAULT_STORE = Path("results") / "edgebench.db"

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SQLITE_URL_PREFIX = "sqlite:///"
_CANDIDATES_SHOWN = 5

_RUN_SELECT = (
    "SELECT id, started_at, finished_at, status, host, git_commit, command, tags, env, "
    "(SELECT COUNT(*) FROM results WHERE results.run_id = runs.id), "
    "(SELECT group_concat(DISTINCT method) FROM results WHERE results.run_id = runs.id), "
    "(SELECT group_concat(DISTINCT machine_id) FROM results WHERE results.run_id = runs.id) FROM runs"
)
_NEWEST_FIRST = " ORDER BY started_at DESC, id DESC"


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


def store_path(location: str | Path) -> Path:
    """The file behind a store location: a path, or a ``sqlite:///path`` URL.

    As in SQLAlchemy, ``sqlite:///results/x.db`` is relative and ``sqlite:////abs/x.db``
    absolute. Other URL schemes are refused until a server store exists.
    """
    if isinstance(location, Path):
        return location
    if not _URL_SCHEME.match(location):
        return Path(location)
    if location.startswith(_SQLITE_URL_PREFIX) and len(location) > len(_SQLITE_URL_PREFIX):
        return Path(location[len(_SQLITE_URL_PREFIX) :])
    raise UsageError(
        f"cannot use results store {location!r}: only SQLite stores are supported in this "
        "version (give a file path or sqlite:///path)"
    )


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


class Store:
    """Runs and records in a SQLite file. Open with ``Store.open``; use as a context manager."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._conn = connection
        self.path = path

    @classmethod
    def open(cls, location: str | Path, *, create: bool = True) -> Store:
        """Open (and upgrade) the store at ``location``; ``create`` makes a missing one."""
        path = store_path(location)
        if not path.exists():
            if not create:
                raise UsageError(f"no results store at {path} (`edgebench run` creates it)")
            path.parent.mkdir(parents=True, exist_ok=True)
        elif path.is_dir():
            raise UsageError(f"results store {path} is a directory, not a file")
        # Autocommit mode: each write is its own transaction, committed before returning.
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            connection.execute("PRAGMA foreign_keys = ON")
            migrations.upgrade(connection)
        except (sqlite3.DatabaseError, UsageError) as exc:
            connection.close()
            raise UsageError(f"cannot open results store {path}: {exc}") from exc
        return cls(connection, path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

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
        self._conn.execute(
            "INSERT INTO runs (id, started_at, finished_at, status, host, git_commit, command, "
            "tags, env) VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?)",
            (
                run.id,
                run.started_at,
                run.status,
                run.host,
                run.git_commit,
                json.dumps(run.command),
                json.dumps(run.tags),
                json.dumps(run.env),
            ),
        )
        return run

    def finish_run(self, run_id: str, status: FinalRunStatus) -> None:
        if status not in get_args(FinalRunStatus):
            raise ValueError(f"a run finishes as one of {get_args(FinalRunStatus)}, not {status!r}")
        finished_at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        cursor = self._conn.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
            (status, finished_at, run_id),
        )
        if cursor.rowcount == 0:
            raise UsageError(f"no run {run_id!r} in {self.path}")

    def runs(self) -> list[RunInfo]:
        """All runs, newest first, with their record counts."""
        rows = self._conn.execute(_RUN_SELECT + _NEWEST_FIRST).fetchall()
        return [_run_from_row(row) for row in rows]

    def latest_run_id(self) -> str | None:
        row = self._conn.execute("SELECT id FROM runs" + _NEWEST_FIRST + " LIMIT 1").fetchone()
        return None if row is None else row[0]

    def get_run(self, id_or_prefix: str) -> RunInfo:
        """The run with this id, or the only run whose id starts with it (like git)."""
        if not id_or_prefix:
            raise UsageError("empty run id")
        rows = self._conn.execute(
            _RUN_SELECT + " WHERE substr(id, 1, ?) = ?" + _NEWEST_FIRST,
            (len(id_or_prefix), id_or_prefix),
        ).fetchall()
        matches = [_run_from_row(row) for row in rows]
        return pick_run(matches, id_or_prefix, lambda: f" in {self.path}; {self._newest_ids_hint()}")

    def _newest_ids_hint(self) -> str:
        rows = self._conn.execute(
            "SELECT id FROM runs" + _NEWEST_FIRST + " LIMIT ?", (_CANDIDATES_SHOWN,)
        ).fetchall()
        if not rows:
            return "the store has no runs"
        return "newest runs: " + ", ".join(row[0] for row in rows)

    # Records

    def add_record(self, record: Record) -> None:
        """Store one record; it is committed when this returns."""
        try:
            self._conn.execute(
                "INSERT INTO results (run_id, created_at, model, model_fingerprint, backend, "
                "target, mode, device, precision, batch, method, machine_id, status, p50_ms, record, samples) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.run_id,
                    record.created_at,
                    record.model,
                    record.model_fingerprint,
                    record.backend,
                    record.target,
                    record.mode,
                    record.device,
                    record.precision,
                    record.batch,
                    record.method,
                    record.machine_id,
                    record.status,
                    record.latency_ms.p50 if record.latency_ms else None,
                    json.dumps(record.to_json_dict(with_samples=False)),
                    _pack_samples(record.samples_ms),
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise UsageError(
                f"cannot store a record of run {record.run_id!r}: no such run in {self.path}"
            ) from exc

    def records(self, run_id: str | None = None, *, method: str | None = None) -> list[Record]:
        """Records in the order they were stored, samples included; one run's, or all; of one
        measuring method, or of every method."""
        conditions, params = [], []
        if run_id is not None:
            conditions.append("run_id = ?")
            params.append(self.get_run(run_id).id)
        if method is not None:
            conditions.append("method = ?")
            params.append(method)
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        rows = self._conn.execute("SELECT record, samples FROM results" + where + " ORDER BY id", params).fetchall()
        return [self._record_from_row(record_json, samples) for record_json, samples in rows]

    def _record_from_row(self, record_json: str, samples: bytes | None) -> Record:
        # Upgraded here, not by the validator alone, so a refusal names this file.
        fields = upgrade_record(json.loads(record_json), source=f"a record in {self.path}")
        fields["samples_ms"] = _unpack_samples(samples)
        return Record.model_validate(fields)


def _run_from_row(row: tuple) -> RunInfo:
    run_id, started_at, finished_at, status, host, git_commit, command, tags, env, count, methods, machines = row
    return RunInfo(
        id=run_id,
        started_at=started_at,
        finished_at=finished_at,
        status=status,
        host=host,
        git_commit=git_commit,
        command=json.loads(command),
        tags=json.loads(tags),
        env=json.loads(env),
        record_count=count,
        methods=sorted(methods.split(",")) if methods else [],
        machine_ids=sorted(machines.split(",")) if machines else [],
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
