"""Where a results store is: a SQLite file (the default), an in-memory SQLite database, or a
PostgreSQL server; and the SQLAlchemy engine that reaches it.

A location is what ``--store`` takes: a file path, ``sqlite:///path``, ``:memory:`` or
``postgresql://user[:password]@host[:port]/database``. Messages name a store by ``display``,
which never shows a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import StaticPool

from edgebench.errors import UsageError

DEFAULT_STORE = Path("results") / "edgebench.db"
STORE_ENV = "EDGEBENCH_STORE"  # the store when --store is not given

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SQLITE_URL_PREFIX = "sqlite:///"
_MEMORY = ":memory:"
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
_POSTGRES_DRIVER = "postgresql+psycopg"  # psycopg 3
_SQLITE_BUSY_TIMEOUT_S = 60  # many writers on one file wait their turn instead of failing
_CONNECT_TIMEOUT_S = 10  # an unreachable server is known within seconds, not minutes
# SQLSTATE classes of a server that went away (08: connection exception, 57P0x: shut down).
_GONE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


class StoreUnreachable(UsageError):
    """The store's server cannot be reached (now, or any more): a run goes on in the spool."""


@dataclass(frozen=True)
class StoreLocation:
    url: URL
    #: The SQLite file; None for a server or an in-memory database.
    file: Optional[Path]
    #: How messages name the store: the file, or the URL with its password masked.
    display: str

    @property
    def is_server(self) -> bool:
        return self.url.get_backend_name() != "sqlite"

    def engine(self) -> Engine:
        """An engine whose SQLite connections take their transactions as ``Store`` and
        ``migrations`` begin them (``BEGIN IMMEDIATE`` when a connection's ``sqlite_immediate``
        execution option is set) and enforce foreign keys."""
        if self.is_server:
            # pre_ping: a connection the server dropped is replaced, not failed, when it is back.
            return create_engine(self.url, pool_pre_ping=True, connect_args={"connect_timeout": _CONNECT_TIMEOUT_S})
        if self.file is None:
            # One connection shared: each new connection to :memory: would be a new, empty database.
            engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            engine = create_engine(self.url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_connected)
        event.listen(engine, "begin", _sqlite_begin)
        return engine


def _sqlite_connected(dbapi_connection, _record) -> None:
    # The driver's own implicit transactions are off: BEGIN is ours (see _sqlite_begin), so DDL
    # is transactional and a migration's lock is taken before it reads the schema version.
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA foreign_keys = ON")


def _sqlite_begin(connection) -> None:
    immediate = connection.get_execution_options().get("sqlite_immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def store_location(location: str | Path) -> StoreLocation:
    """Parse a store location; UsageError (naming no password) when it is not one.

    As in SQLAlchemy, ``sqlite:///results/x.db`` is relative and ``sqlite:////abs/x.db`` absolute.
    """
    if isinstance(location, Path):
        return _file(location)
    if location == _MEMORY:
        return StoreLocation(URL.create("sqlite"), None, _MEMORY)
    if not _URL_SCHEME.match(location):
        return _file(Path(location))
    if location.startswith(_SQLITE_URL_PREFIX) and len(location) > len(_SQLITE_URL_PREFIX):
        return _file(Path(location[len(_SQLITE_URL_PREFIX):]))
    scheme = location.split("://", 1)[0]
    shown = mask_password(location)
    if scheme not in _POSTGRES_SCHEMES:
        raise UsageError(f"cannot use results store {shown!r}: give a SQLite file path (or sqlite:///path) or "
                         "a postgresql://user@host:port/database URL")
    try:
        url = make_url(location)
    except (ArgumentError, ValueError):
        raise UsageError(f"cannot use results store {shown!r}: not a valid URL "
                         "(postgresql://user[:password]@host[:port]/database)") from None
    if not url.database or not url.host:
        raise UsageError(f"cannot use results store {shown!r}: name the server and the database "
                         "(postgresql://user@host:port/database)")
    url = url.set(drivername=_POSTGRES_DRIVER)
    return StoreLocation(url, None, mask_password(location))


def _file(path: Path) -> StoreLocation:
    return StoreLocation(URL.create("sqlite", database=str(path)), path, str(path))


def mask_password(location: str) -> str:
    """``location`` with the password of its URL, if any, shown as ***."""
    return re.sub(r"^([^:/]+://[^:/@]*:)[^@]*@", r"\1***@", location)


def unreachable(exc: DBAPIError) -> bool:
    """Whether ``exc`` says the server cannot be reached or went away, as opposed to refusing
    what was asked (a wrong user or password, a missing database, a broken statement)."""
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", "")
    if sqlstate is None:
        # psycopg gives a failed connection attempt no SQLSTATE: nothing answered, unless the
        # server did with a FATAL refusal of this user or database (not one of being restarted).
        message = str(exc.orig)
        return "FATAL:" not in message or "the database system is" in message
    return sqlstate.startswith(_GONE_SQLSTATES)


def first_line(exc: BaseException) -> str:
    """A driver's message, which may span lines, as one line for the user."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return lines[0] if lines else type(original).__name__
