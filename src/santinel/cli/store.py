"""Open the authorization store the server uses, for administration commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from santinel.services.container import prepare_schema
from santinel.settings import Settings
from santinel.storage.sql.auth_store import SqlAuthStore
from santinel.storage.sql.repository import SqlRepository


@asynccontextmanager
async def auth_store(settings: Settings) -> AsyncIterator[SqlAuthStore]:
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    repository = SqlRepository(settings.resolved_database_url())
    try:
        await prepare_schema(repository, migrate_empty=True)
        yield SqlAuthStore(repository.reader, repository.writer)
    finally:
        await repository.close()
