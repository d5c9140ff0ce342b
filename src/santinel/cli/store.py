"""Open the authorization stores the server uses, for administration commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from santinel.services.container import prepare_schema
from santinel.settings import Settings
from santinel.storage.sql.audit_store import SqlAuditStore
from santinel.storage.sql.auth_store import SqlAuthStore
from santinel.storage.sql.grant_store import SqlGrantStore
from santinel.storage.sql.repository import SqlRepository


@asynccontextmanager
async def _repository(settings: Settings) -> AsyncIterator[SqlRepository]:
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    repository = SqlRepository(settings.resolved_database_url())
    try:
        await prepare_schema(repository, migrate_empty=True)
        yield repository
    finally:
        await repository.close()


@asynccontextmanager
async def auth_store(settings: Settings) -> AsyncIterator[SqlAuthStore]:
    async with _repository(settings) as repository:
        yield SqlAuthStore(repository.reader, repository.writer)


@asynccontextmanager
async def grant_store(settings: Settings) -> AsyncIterator[SqlGrantStore]:
    async with _repository(settings) as repository:
        yield SqlGrantStore(repository.reader, repository.writer)


@asynccontextmanager
async def audit_store(settings: Settings) -> AsyncIterator[SqlAuditStore]:
    async with _repository(settings) as repository:
        yield repository.audit
