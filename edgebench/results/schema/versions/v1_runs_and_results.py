"""Schema version 1: runs, their records (comparison-key columns, JSON, packed samples), meta.

Revision ID: v1
"""

import sqlalchemy as sa
from alembic import op

revision = "v1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("meta", sa.Column("key", sa.Text, primary_key=True), sa.Column("value", sa.Text))
    op.create_table(
        "runs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("started_at", sa.Text, nullable=False),
        sa.Column("finished_at", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("git_commit", sa.Text),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("env", sa.Text, nullable=False),
    )
    op.create_table(
        "results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Text, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("model_fingerprint", sa.Text),
        sa.Column("backend", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("precision", sa.Text, nullable=False),
        sa.Column("batch", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("p50_ms", sa.Float),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("samples", sa.LargeBinary),
        sqlite_autoincrement=True,  # ids never reused: they order records as they were stored
    )
    # Comparisons look records up by the fields of the comparison key (results.key).
    op.create_index("results_by_key", "results",
                    ["model", "model_fingerprint", "target", "mode", "backend", "device", "precision", "batch"])
    op.create_index("results_by_run", "results", ["run_id"])
