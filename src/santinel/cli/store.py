"""Open the authorization stores the server uses, for administration commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from santinel.crypto.key_providers import KeyProviderError
from santinel.services.container import prepare_schema
from santinel.services.encryption import has_keys, open_sealer
from santinel.settings import Settings
from santinel.storage.sql.audit_store import SqlAuditStore
from santinel.storage.sql.auth_store import SqlAuthStore
from santinel.storage.sql.grant_store import SqlGrantStore
from santinel.storage.sql.keystore import WrongKeyEncryptionKey
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
    """The audit trail as stored: its chain verifies without any key; bodies are not opened."""
    async with _repository(settings) as repository:
        yield repository.audit


@asynccontextmanager
async def opened_audit_store(
    settings: Settings, *, required: bool
) -> AsyncIterator[tuple[SqlAuditStore, str | None]]:
    """The audit trail with the data keys that open its bodies (the KEK of `settings`), and why
    they could not be opened when not `required` (None: opened, or the database has none)."""
    async with _repository(settings) as repository:
        problem = None
        if await has_keys(repository):
            try:
                repository.use_sealer(await open_sealer(settings, repository))
            except (KeyProviderError, WrongKeyEncryptionKey) as exc:
                if required:
                    raise
                problem = str(exc)
        yield repository.audit, problem
