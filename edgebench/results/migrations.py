"""Store schema versions and the steps that upgrade one version to the next.

A store carries its schema version in ``meta.schema_version``. Opening an older store
applies the registered steps one at a time, in one transaction, so a store is either
fully upgraded or left as it was. Version 0 is an empty database; the first step
creates the version 1 schema, so new and old stores go through the same path.

Steps are named as asv names them, ``_update_to_N``: one function per version. To change the
schema: write a store written by the current version under ``tests/data`` first (see
``make_store_v1_last.py``), then write the step, append it to ``STEPS`` and bump
``SCHEMA_VERSION``, so the upgrade from every past version stays tested.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Callable

from edgebench.errors import UsageError
from edgebench.results.record_versions import refuse_newer, upgrade_record

SCHEMA_VERSION = 2

MigrationStep = Callable[[sqlite3.Connection], None]


def _update_to_1(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute(
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT NULL,
            status TEXT NOT NULL,
            host TEXT NOT NULL,
            git_commit TEXT NULL,
            command TEXT NOT NULL,
            tags TEXT NOT NULL,
            env TEXT NOT NULL
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE results (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs(id),
            created_at TEXT NOT NULL,
            model TEXT NOT NULL,
            model_fingerprint TEXT NULL,
            backend TEXT NOT NULL,
            target TEXT NOT NULL,
            mode TEXT NOT NULL,
            device TEXT NOT NULL,
            precision TEXT NOT NULL,
            batch INTEGER NOT NULL,
            status TEXT NOT NULL,
            p50_ms REAL NULL,
            record TEXT NOT NULL,
            samples BLOB NULL
        )
        """
    )
    # Comparisons look records up by the fields of the comparison key (results.key).
    conn.execute(
        "CREATE INDEX results_by_key ON results "
        "(model, model_fingerprint, target, mode, backend, device, precision, batch)"
    )
    conn.execute("CREATE INDEX results_by_run ON results (run_id)")


def _update_to_2(conn: sqlite3.Connection) -> None:
    """Records say how they were measured (``method``) and on which machine (``machine_id``); both
    are columns of the comparison key. Each stored record is rewritten as a version 2 record."""
    conn.execute("ALTER TABLE results ADD COLUMN method TEXT NOT NULL DEFAULT 'sweep'")
    conn.execute("ALTER TABLE results ADD COLUMN machine_id TEXT NULL")
    rows = conn.execute(
        "SELECT results.id, results.record, runs.host, runs.env FROM results JOIN runs ON runs.id = results.run_id"
    ).fetchall()
    for row_id, record_json, host, run_env in rows:
        # The run's environment and host stand in where an old record's own env says less.
        fields = upgrade_record(json.loads(record_json), stored_env={**json.loads(run_env), "host": host})
        conn.execute("UPDATE results SET method = ?, machine_id = ?, record = ? WHERE id = ?",
                     (fields["method"], fields["machine_id"], json.dumps(fields), row_id))
    conn.execute("DROP INDEX results_by_key")
    conn.execute(
        "CREATE INDEX results_by_key ON results "
        "(model, model_fingerprint, machine_id, target, mode, backend, device, precision, batch, method)"
    )


# (from_version, step): each step turns a store of from_version into from_version + 1.
STEPS: list[tuple[int, MigrationStep]] = [
    (0, _update_to_1),
    (1, _update_to_2),
]


def schema_version(conn: sqlite3.Connection) -> int:
    """The store's schema version; 0 for an empty database."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return 0
    if "meta" not in tables:
        raise UsageError("a SQLite database but not an edgebench results store (no meta table)")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None or not str(row[0]).isdigit():
        raise UsageError("results store has no valid schema_version in its meta table")
    return int(row[0])


def upgrade(conn: sqlite3.Connection) -> None:
    """Bring the store up to ``SCHEMA_VERSION``, or refuse a store from a newer edgebench.

    The connection must be in autocommit mode (``isolation_level=None``): this function
    owns the transaction.
    """
    version = schema_version(conn)
    _refuse_newer(version)
    if version == SCHEMA_VERSION:
        return
    # IMMEDIATE takes the write lock first, so two processes cannot both upgrade.
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have upgraded the store while this one waited for the lock.
        version = schema_version(conn)
        _refuse_newer(version)
        _apply_steps(conn, version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _refuse_newer(version: int) -> None:
    refuse_newer("the store", version, SCHEMA_VERSION)


def _apply_steps(conn: sqlite3.Connection, version: int) -> None:
    steps = dict(STEPS)
    while version < SCHEMA_VERSION:
        if version not in steps:
            raise RuntimeError(f"no migration step from schema version {version}")
        steps[version](conn)
        version += 1
        _write_version(conn, version)


def _write_version(conn: sqlite3.Connection, version: int) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (str(version),),
    )
