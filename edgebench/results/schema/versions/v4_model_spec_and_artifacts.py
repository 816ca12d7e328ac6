"""Schema version 4: records of version 3, which name the model as the run was given it
(``model_spec``) and list the files kept of it (``artifacts``, in the artifact store beside the
store). Each stored record is rewritten as a record of the current version, so an edgebench of
schema 3 refuses the store as a whole instead of failing on its newer records one by one.

Revision ID: v4
"""

import json

import sqlalchemy as sa
from alembic import op

from edgebench.results.record_versions import upgrade_record

revision = "v4"
down_revision = "v3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, record FROM results")).all()
    updates = [{"id": row_id, "record": json.dumps(upgrade_record(json.loads(record_json)))}
               for row_id, record_json in rows]
    if updates:
        connection.execute(sa.text("UPDATE results SET record = :record WHERE id = :id"), updates)
