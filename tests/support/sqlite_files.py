"""Raw reads and writes of a SQLite file, for tests that inspect or damage a store behind its back."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path


def sqlite_rows(path: Path, query: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(query).fetchall()


def sqlite_write(path: Path, statement: str) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(statement)
