"""Alembic environment: always given a live connection by `santinel.storage.sql.migrations`."""

from __future__ import annotations

from alembic import context

from santinel.storage.sql.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
context.run_migrations()
