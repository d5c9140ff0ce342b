"""The Alembic migrations build exactly the declared schema (no drift), on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from santinel.settings import to_sqlalchemy_url
from santinel.storage.sql import migrations
from santinel.storage.sql.repository import SqlRepository
from santinel.storage.sql.tables import metadata
from tests.services import postgres_database


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def _migrated_diff(url: str) -> tuple[list[Any], str | None]:
    repository = SqlRepository(url)
    try:
        await migrations.upgrade(repository.writer)
        await migrations.upgrade(repository.writer)  # idempotent
        async with repository.writer.connect() as connection:
            diff = await connection.run_sync(_diff)
            current = await connection.run_sync(migrations.current_revision)
        return diff, current
    finally:
        await repository.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrations_match_the_declared_tables(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        diff, current = anyio.run(_migrated_diff, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    else:
        with postgres_database() as url:
            diff, current = anyio.run(_migrated_diff, to_sqlalchemy_url(url))
    assert diff == []
    assert current == migrations.head_revision()
