"""Schema version 3: every stored record has a unique ``uid``, so many writers and
``edgebench results push`` store each record exactly once (a record pushed again is known by it).
Records already stored get a fresh one.

Revision ID: v3
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "v3"
down_revision = "v2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("results", sa.Column("uid", sa.Text))
    connection = op.get_bind()
    ids = connection.execute(sa.text("SELECT id FROM results")).scalars().all()
    if ids:
        connection.execute(sa.text("UPDATE results SET uid = :uid WHERE id = :id"),
                           [{"id": row_id, "uid": uuid.uuid4().hex} for row_id in ids])
    # SQLite cannot add NOT NULL or UNIQUE to a column in place: batch mode copies the table.
    with op.batch_alter_table("results", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("uid", existing_type=sa.Text, nullable=False)
        batch.create_unique_constraint("results_uid", ["uid"])
