"""Schema version 2: records say how they were measured (``method``) and on which machine
(``machine_id``); both are columns of the comparison key. Each stored record is rewritten as a
record of the current version.

Revision ID: v2
"""

import json

import sqlalchemy as sa
from alembic import op

from edgebench.results.record_versions import upgrade_record

revision = "v2"
down_revision = "v1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("results", sa.Column("method", sa.Text, nullable=False, server_default="sweep"))
    op.add_column("results", sa.Column("machine_id", sa.Text))
    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT results.id, results.record, runs.host, runs.env FROM results JOIN runs ON runs.id = results.run_id"
    )).all()
    updates = []
    for row_id, record_json, host, run_env in rows:
        # The run's environment and host stand in where an old record's own env says less.
        fields = upgrade_record(json.loads(record_json), stored_env={**json.loads(run_env), "host": host})
        updates.append({"id": row_id, "method": fields["method"], "machine_id": fields["machine_id"],
                        "record": json.dumps(fields)})
    if updates:
        connection.execute(sa.text("UPDATE results SET method = :method, machine_id = :machine_id, "
                                   "record = :record WHERE id = :id"), updates)
    op.drop_index("results_by_key", table_name="results")
    op.create_index("results_by_key", "results", ["model", "model_fingerprint", "machine_id", "target", "mode",
                                                  "backend", "device", "precision", "batch", "method"])
