"""Alembic's environment for fidesmail: migrations run on the connection `database.upgrade` hands in."""

from alembic import context

from fidesmail.records.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
