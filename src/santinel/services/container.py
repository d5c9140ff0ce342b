"""Everything built once from `Settings`: the repository and the services using it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from santinel.audit.checkpoint import load_or_create_key
from santinel.crypto.jwt import KeyRing
from santinel.services import startup_heap
from santinel.services.audit import AuditService
from santinel.services.authn import Authenticator
from santinel.services.dispatch import FhirService
from santinel.services.dpop import DpopVerifier
from santinel.services.dpop_nonce import DpopNonces
from santinel.services.encryption import open_sealer, tamper_recorder
from santinel.services.oauth import jwks_fetch
from santinel.services.oauth.jwks_fetch import JwksFetcher
from santinel.services.oauth.keys import KEY_REFRESH_SECONDS, KeyRefresher, load_keyring
from santinel.services.ratelimit import events as security_events
from santinel.services.ratelimit.limiter import TrafficControl
from santinel.settings import Settings
from santinel.storage.sql import migrations
from santinel.storage.sql.auth_store import SqlAuthStore
from santinel.storage.sql.grant_store import SqlGrantStore
from santinel.storage.sql.keystore import PLAINTEXT_NAMES_STATE
from santinel.storage.sql.repository import SqlRepository
from santinel.storage.sql.sealing import KeyedSealer, Sealer
from santinel.storage.sql.tables import keystore_state

# Opens the data keys of a repository's database (`services.encryption.open_sealer`; the
# bench's null cipher is another, in bench/ only).
SealerFactory = Callable[[Settings, SqlRepository], Awaitable[Sealer]]


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
    dpop: DpopVerifier  # DPoP proofs (RFC 9449), replay cache in the store, nonces
    traffic: TrafficControl  # rate limits, quotas, tiers' traffic, brute-force protection

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        migrate: bool = True,
        key_refresh_seconds: float = KEY_REFRESH_SECONDS,
        sealer: SealerFactory = open_sealer,
        check_name_indexes: bool = True,
    ) -> Container:
        """Open the database and build the services; `key_refresh_seconds` is how often the
        signing keys are reloaded from the store (a rotation by another process or node);
        `sealer` opens the data keys (the KEK must open them, or nothing starts);
        `check_name_indexes`: refuse a database whose name indexes were built in the other mode
        (False only for `santinel db reindex`, which rebuilds them)."""
        TrafficControl.check(settings)  # refuse bad limits or unsafe public types before anything
        if not settings.database_url:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        repository = SqlRepository(
            settings.resolved_database_url(),
            query_timeout_seconds=settings.search_timeout_seconds,
            pool_size=settings.database_pool_size,
        )
        try:
            await prepare_schema(repository, migrate_empty=migrate)
            repository.use_sealer(await sealer(settings, repository))
            if check_name_indexes:
                await name_indexes_match(repository)
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
            retention_days=settings.audit_retention_days,
            flush_reads=settings.audit_flush_reads,
        )
        repository.before_commit = audit.on_commit
        if isinstance(repository.sealer, KeyedSealer):
            repository.sealer.on_tamper = tamper_recorder(audit)
        security_events.set_audit_hook(audit.lockout)
        audit.start()
        startup_heap.freeze_once()
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
            DpopVerifier(auth_store, dpop_nonces(settings, keyring)),
            TrafficControl.build(settings, auth_store),
        )

    async def close(self) -> None:
        await self.traffic.close()
        await self.audit.close()
        await self.key_refresher.close()
        await self.repository.close()


def dpop_nonces(settings: Settings, keyring: KeyRing) -> DpopNonces | None:
    seconds = settings.dpop_nonce_seconds
    return DpopNonces(keyring, seconds) if seconds > 0 else None


class SchemaNotCurrent(RuntimeError):
    """The database holds an older schema: an operator runs `santinel db upgrade` first."""


class NameIndexesMismatch(SchemaNotCurrent):
    """The person-name indexes were built blind and this process indexes them in clear, or the
    reverse: its name searches would silently miss every resource written the other way."""


async def name_indexes_match(repository: SqlRepository, *, adopt: bool = False) -> None:
    """Check the process's `plaintext_name_indexes` against the mode the database's rows were
    written in, as its data keys read it at start (`adopt`: record this process's, after a
    reindex); recorded at the first start. Only databases sealed with data keys have blind
    indexes."""
    if not isinstance(repository.sealer, KeyedSealer):
        return
    mine = int(repository.sealer.plaintext_names)
    recorded = repository.sealer.keys.plaintext_names_recorded
    if recorded == mine:
        return  # every start but the first: no statement
    if recorded is not None and not adopt:
        raise NameIndexesMismatch(_mismatch(bool(recorded)))
    c = keystore_state.c
    try:
        async with repository.writer.begin() as connection:
            if recorded is None:
                row = {"name": PLAINTEXT_NAMES_STATE, "value": mine}
                await connection.execute(insert(keystore_state).values(row))
            else:
                await connection.execute(
                    update(keystore_state).where(c.name == PLAINTEXT_NAMES_STATE).values(value=mine)
                )
    except IntegrityError:  # another node recorded it at the same first start: compare
        async with repository.reader.connect() as connection:
            query = select(c.value).where(c.name == PLAINTEXT_NAMES_STATE)
            stored = (await connection.execute(query)).scalar()
        if stored != mine:
            raise NameIndexesMismatch(_mismatch(bool(stored))) from None
    repository.sealer.keys.plaintext_names_recorded = mine


def _mismatch(stored_in_clear: bool) -> str:
    def mode(in_clear: bool) -> str:
        return "in clear" if in_clear else "as blind indexes"

    return (
        f"This database indexes person names {mode(stored_in_clear)}, and this process was "
        f"given plaintext_name_indexes={str(not stored_in_clear).lower()}: its name searches "
        "would miss every resource written the other way. Start it with the database's "
        "setting, or change the database's: stop every server, run `santinel db reindex` with "
        "the new setting, then start the servers with it."
    )


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
