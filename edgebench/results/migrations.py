"""The store's schema versions, made and upgraded by Alembic when a store is opened.

The revisions live in ``schema/versions``, one per schema version, named ``vN``; Alembic records
the store's revision in its ``alembic_version`` table, and ``meta.schema_version`` carries the
number N too, for people and for edgebench releases from before Alembic, which refuse a store
of a newer version by it. A new store is made by the same path: an empty database is upgraded
from nothing. A store of version 1 or 2 written before Alembic has no ``alembic_version`` yet:
it is adopted (stamped at the revision its ``meta.schema_version`` names), then upgraded.

Opening takes a lock first (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped
advisory lock), so two processes opening one store at once do not both upgrade it, and runs
every revision in that one transaction, so a store is either fully upgraded or left as it was.

To change the schema: first write a store as the current version writes it under
``tests/data`` (see ``make_store_v2.py``) so the upgrade from every past version stays tested;
then add ``schema/versions/vN_<what>.py`` with ``down_revision`` the current head (Alembic
operations; ``op.batch_alter_table`` for what SQLite cannot alter in place), bump
``SCHEMA_VERSION``, and change ``tables`` to match.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect, text

from edgebench.errors import UsageError
from edgebench.results.record_versions import refuse_newer

SCHEMA_VERSION = 4
SCRIPT_LOCATION = Path(__file__).with_name("schema")
# Any constant: PostgreSQL's advisory locks are named by a number.
_POSTGRES_LOCK_ID = 0x65646765_62656E63  # "edgebenc"


def upgrade(engine: Engine, *, create: bool) -> None:
    """Bring the store up to ``SCHEMA_VERSION`` (making it in an empty database when ``create``),
    or refuse a store from a newer edgebench or a database that holds something else."""
    with engine.connect() as connection:
        if _current(connection) == (SCHEMA_VERSION, revision_of(SCHEMA_VERSION)):
            return  # the common case, without taking the lock
    with engine.connect().execution_options(sqlite_immediate=True) as connection, connection.begin():
        _lock(connection)
        # Checked again under the lock: another process may have upgraded it meanwhile.
        version, revision = _current(connection)
        if version == 0 and not create:
            raise UsageError("the database holds no results store (`edgebench run` makes one)")
        refuse_newer("the store", version, SCHEMA_VERSION)
        config = Config()
        config.set_main_option("script_location", str(SCRIPT_LOCATION))
        config.attributes["connection"] = connection
        try:
            if revision is None and version > 0:
                command.stamp(config, revision_of(version))  # adopted: written before Alembic
            command.upgrade(config, "head")
        except CommandError as exc:
            raise UsageError(f"cannot upgrade the store's schema: {exc}") from exc
        _write_version(connection, SCHEMA_VERSION)


def revision_of(version: int) -> str:
    return f"v{version}"


def _current(connection: Connection) -> tuple[int, str | None]:
    """The store's ``meta.schema_version`` (0 for an empty database) and Alembic revision."""
    tables = set(inspect(connection).get_table_names())
    if not tables:
        return 0, None
    if "meta" not in tables:
        raise UsageError("a database but not an edgebench results store (no meta table)")
    value = connection.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar()
    if value is None or not str(value).isdigit():
        raise UsageError("results store has no valid schema_version in its meta table")
    revision = MigrationContext.configure(connection).get_current_revision() if "alembic_version" in tables else None
    return int(value), revision


def _lock(connection: Connection) -> None:
    # SQLite: BEGIN IMMEDIATE (the sqlite_immediate option) already holds the write lock.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _POSTGRES_LOCK_ID})


def _write_version(connection: Connection, version: int) -> None:
    connection.execute(text("DELETE FROM meta WHERE key = 'schema_version'"))
    connection.execute(text("INSERT INTO meta (key, value) VALUES ('schema_version', :value)"), {"value": str(version)})
