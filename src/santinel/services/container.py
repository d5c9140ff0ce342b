"""Everything built once from `Settings`: the repository and the services using it."""

from __future__ import annotations

from dataclasses import dataclass

from santinel.audit.checkpoint import load_or_create_key
from santinel.crypto.jwt import KeyRing
from santinel.services.audit import AuditService
from santinel.services.authn import Authenticator
from santinel.services.dispatch import FhirService
from santinel.services.oauth import jwks_fetch
from santinel.services.oauth.jwks_fetch import JwksFetcher
from santinel.services.oauth.keys import KEY_REFRESH_SECONDS, KeyRefresher, load_keyring
from santinel.settings import Settings
from santinel.storage.sql import migrations
from santinel.storage.sql.auth_store import SqlAuthStore
from santinel.storage.sql.grant_store import SqlGrantStore
from santinel.storage.sql.repository import SqlRepository


@dataclass
class Container:
    settings: Settings
    repository: SqlRepository
    service: FhirService
    auth_store: SqlAuthStore
    grant_store: SqlGrantStore
    keyring: KeyRing
    authenticator: Authenticator
    key_refresher: KeyRefresher
    jwks_fetcher: JwksFetcher
    audit: AuditService

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        migrate: bool = True,
        key_refresh_seconds: float = KEY_REFRESH_SECONDS,
    ) -> Container:
        """Open the database and build the services; `key_refresh_seconds` is how often the
        signing keys are reloaded from the store (a rotation by another process or node)."""
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
        try:
            keyring = await load_keyring(auth_store)
        except BaseException:
            await repository.close()
            raise
        service = FhirService(repository, settings)
        authenticator = Authenticator(keyring, auth_store)
        key_refresher = KeyRefresher(auth_store, keyring, interval=key_refresh_seconds)
        key_refresher.start()
        jwks_fetcher = JwksFetcher()
        jwks_fetch.attach(auth_store, jwks_fetcher)
        audit = AuditService(
            repository.audit,
            load_or_create_key(settings.audit_key_path),
            checkpoint_seconds=settings.audit_checkpoint_seconds,
        )
        repository.before_commit = audit.on_commit
        audit.start()
        return cls(
            settings,
            repository,
            service,
            auth_store,
            SqlGrantStore(repository.reader, repository.writer),
            keyring,
            authenticator,
            key_refresher,
            jwks_fetcher,
            audit,
        )

    async def close(self) -> None:
        await self.audit.close()
        await self.key_refresher.close()
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
