"""Alembic's environment for the results store.

Run only by ``edgebench.results.migrations``, on the connection it opened, locked and began a
transaction on (passed as ``config.attributes["connection"]``): every revision of one upgrade
runs inside that transaction, so a store is either fully upgraded or left as it was.
"""

from alembic import context

connection = context.config.attributes["connection"]
# Batch mode: SQLite cannot alter most of a table in place, so batch operations copy it.
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
