"""Store schema versions and the steps that upgrade one version to the next.

A store carries its schema version in ``meta.schema_version``. Opening an older store
applies the registered steps one at a time, in one transaction, so a store is either
fully upgraded or left as it was. Version 0 is an empty database; the first step
creates the version 1 schema, so new and old stores go through the same path.

To change the schema: write a step from the current version, append it to ``STEPS``,
bump ``SCHEMA_VERSION``, and keep a store written by the old version under
``tests/data`` (see ``store-v1.db``) so the upgrade stays tested.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

from edgebench.errors import UsageError

SCHEMA_VERSION = 1

MigrationStep = Callable[[sqlite3.Connection], None]


def _create_schema_v1(conn: sqlite3.Connection) -> None:
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
    # Comparisons look records up by the same fields as Record.key.
    conn.execute(
        "CREATE INDEX results_by_key ON results "
        "(model, model_fingerprint, target, mode, backend, device, precision, batch)"
    )
    conn.execute("CREATE INDEX results_by_run ON results (run_id)")


# (from_version, step): each step turns a store of from_version into from_version + 1.
STEPS: list[tuple[int, MigrationStep]] = [
    (0, _create_schema_v1),
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
    if version > SCHEMA_VERSION:
        raise UsageError(
            f"results store schema version {version} was written by a newer edgebench "
            f"(this one reads up to version {SCHEMA_VERSION}); upgrade edgebench"
        )


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
