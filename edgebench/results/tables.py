"""The store's tables as the current schema has them, for the queries in ``store``.

The schema itself is made and changed by the revisions under ``schema/versions`` (see
``migrations``); this module only mirrors their result, so keep the two in step.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Integer, LargeBinary, MetaData, Table, Text

metadata = MetaData()

# Key/value facts about the store; ``schema_version`` is the number of its Alembic revision.
meta = Table(
    "meta", metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text),
)

# One invocation of the benchmark. command, tags and env are JSON text.
runs = Table(
    "runs", metadata,
    Column("id", Text, primary_key=True),
    Column("started_at", Text, nullable=False),
    Column("finished_at", Text),
    Column("status", Text, nullable=False),
    Column("host", Text, nullable=False),
    Column("git_commit", Text),
    Column("command", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("env", Text, nullable=False),
)

# One record each; the comparison key's fields are columns, the record itself JSON text without
# its samples, which are packed apart (``store._pack_samples``).
results = Table(
    "results", metadata,
    Column("id", Integer, primary_key=True),
    Column("uid", Text, nullable=False, unique=True),
    Column("run_id", Text, ForeignKey("runs.id"), nullable=False),
    Column("created_at", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("model_fingerprint", Text),
    Column("backend", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("mode", Text, nullable=False),
    Column("device", Text, nullable=False),
    Column("precision", Text, nullable=False),
    Column("batch", Integer, nullable=False),
    Column("method", Text, nullable=False),
    Column("machine_id", Text),
    Column("status", Text, nullable=False),
    Column("p50_ms", Float),
    Column("record", Text, nullable=False),
    Column("samples", LargeBinary),
)
