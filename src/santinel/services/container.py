"""Everything built once from `Settings`: the repository and the services using it."""

from __future__ import annotations

from dataclasses import dataclass

from santinel.crypto.jwt import KeyRing
from santinel.services.authn import Authenticator
from santinel.services.dispatch import FhirService
from santinel.services.oauth.keys import load_keyring
from santinel.settings import Settings
from santinel.storage.sql import migrations
from santinel.storage.sql.auth_store import SqlAuthStore
from santinel.storage.sql.repository import SqlRepository


@dataclass
class Container:
    settings: Settings
    repository: SqlRepository
    service: FhirService
    auth_store: SqlAuthStore
    keyring: KeyRing
    authenticator: Authenticator

    @classmethod
    async def open(cls, settings: Settings, *, migrate: bool = True) -> Container:
        if not settings.database_url:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        repository = SqlRepository(
            settings.resolved_database_url(), query_timeout_seconds=settings.search_timeout_seconds
        )
        try:
            await prepare_schema(repository, migrate_empty=migrate)
        except BaseException:
            await repository.close()
            raise
        auth_store = SqlAuthStore(repository.reader, repository.writer)
        keyring = await load_keyring(auth_store)
        service = FhirService(repository, settings)
        authenticator = Authenticator(keyring, auth_store)
        return cls(settings, repository, service, auth_store, keyring, authenticator)

    async def close(self) -> None:
        await self.repository.close()


class SchemaNotCurrent(RuntimeError):
    """The database holds an older schema: an operator runs `santinel db upgrade` first."""


async def prepare_schema(repository: SqlRepository, *, migrate_empty: bool) -> None:
    """Migrate an empty database; refuse to serve one whose schema is behind (or unknown)."""
    async with repository.writer.connect() as connection:
        current = await connection.run_sync(migrations.current_revision)
    head = migrations.head_revision()
    if current == head:
        return
    if current is None and migrate_empty:
        await migrations.upgrade(repository.writer)
        return
    raise SchemaNotCurrent(
        f"The database schema is at {current or 'nothing'}, the server needs {head}: "
        "run `santinel db upgrade`."
    )
