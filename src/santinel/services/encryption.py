"""Encryption at rest, wired from `Settings`: the KEK provider, the data keys, the sealer the
repository uses, and the security audit event of an integrity failure.

The server refuses to start when the KEK does not open the database's keys (a clear message,
never a half-working server), and warns when the key file sits where a copy of the database
would take it along.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sqlalchemy import select

from santinel.audit.events import Happening
from santinel.crypto.key_providers import (
    EnvKeyProvider,
    FileKeyProvider,
    KeyProvider,
    KeyProviderError,
    VaultTransitProvider,
    path_with_suffix,
)
from santinel.logging import get_logger
from santinel.services import audit_context
from santinel.services.audit import AuditService
from santinel.services.audit_context import OPERATOR_ACTOR
from santinel.settings import Settings
from santinel.storage.sql.keystore import DataKeys, WrongKeyEncryptionKey
from santinel.storage.sql.repository import SqlRepository
from santinel.storage.sql.sealing import BodyRef, KeyedSealer, TamperHook
from santinel.storage.sql.tables import data_key

log = get_logger("santinel.encryption")
INTEGRITY_FAILURE = "integrity-failure"


async def open_sealer(settings: Settings, repository: SqlRepository) -> KeyedSealer:
    """The data keys of `repository`'s database, opened with the configured KEK."""
    existing = await has_keys(repository)
    provider = await key_provider(settings, create=not existing)
    try:
        keys = await _open_keys(provider, repository)
    except BaseException:
        await provider.close()
        raise
    return KeyedSealer(keys, plaintext_names=settings.plaintext_name_indexes)


async def key_provider(settings: Settings, *, create: bool = False) -> KeyProvider:
    """The KEK provider `settings` name; `create`: a missing key file may be created (only for
    a database that holds no key yet)."""
    match settings.key_provider:
        case "env":
            if settings.kek is None:
                raise KeyProviderError("key_provider is env but SANTINEL_KEK is not set")
            return EnvKeyProvider(settings.kek.get_secret_value())
        case "vault":
            if not settings.vault_url or settings.vault_token is None:
                raise KeyProviderError(
                    "key_provider is vault: set SANTINEL_VAULT_URL and SANTINEL_VAULT_TOKEN"
                )
            vault = VaultTransitProvider(
                settings.vault_url,
                settings.vault_token.get_secret_value(),
                mount=settings.vault_transit_mount,
                key=settings.vault_transit_key,
            )
            try:
                await vault.reload()
            except BaseException:
                await vault.close()
                raise
            return vault
    path = settings.key_path
    if not path.exists() and not create:
        raise KeyProviderError(
            f"the key file {path} is missing, and this database's keys were wrapped with "
            "the key it held: restore it (or point key_file at it)"
        )
    provider = FileKeyProvider.load_or_create(path)
    _warn_if_exposed(settings, provider)
    return provider


async def _open_keys(provider: KeyProvider, repository: SqlRepository) -> DataKeys:
    try:
        return await DataKeys.open(provider, repository.reader, repository.writer)
    except WrongKeyEncryptionKey:
        if not isinstance(provider, FileKeyProvider) or not provider.next_path.exists():
            raise
    # `santinel keys rotate-kek` stopped after the database took the new KEK but before the
    # key file was replaced: finish it.
    keys = await DataKeys.open(
        FileKeyProvider(provider.next_path), repository.reader, repository.writer
    )
    promote_next_key_file(provider.path)
    await provider.reload()
    keys.provider = provider
    log.warning("finished an interrupted KEK rotation", key_file=str(provider.path))
    return keys


def promote_next_key_file(path: Path) -> Path:
    """`<key file>.next` becomes the key file; the old one is kept as `<key file>.old`."""
    old = path_with_suffix(path, ".old")
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, old)
    os.replace(path_with_suffix(path, ".next"), path)
    return old


async def has_keys(repository: SqlRepository) -> bool:
    async with repository.reader.connect() as connection:
        row = (await connection.execute(select(data_key.c.key_id).limit(1))).first()
    return row is not None


def _warn_if_exposed(settings: Settings, provider: FileKeyProvider) -> None:
    key_dir = provider.path.resolve().parent
    data_dir = settings.data_dir.resolve()
    if not settings.database_url and (key_dir == data_dir or data_dir in key_dir.parents):
        log.warning(
            "the key-encryption key file sits beside the database: whoever copies the data "
            "directory (or a backup of it) reads everything; move it (key_file)",
            key_file=str(provider.path),
        )
    if provider.group_or_world_readable():
        log.warning(
            "the key-encryption key file is readable by other users: chmod 600 it",
            key_file=str(provider.path),
        )


def tamper_recorder(audit: AuditService) -> TamperHook:
    """Records an integrity failure as a security AuditEvent (outcome 8) and a log line."""

    async def record(ref: BodyRef, why: str) -> None:
        scope = audit_context.current()
        log.error("security.integrity_failure", entity=ref.text(), reason=why)
        happening = Happening(
            INTEGRITY_FAILURE,
            outcome="8",
            outcome_desc=f"stored data failed its integrity check ({why})",
            entity=ref.text(),
            request_id=scope.request_id if scope else None,
        )
        event = audit.event(scope.actor if scope else OPERATOR_ACTOR, happening)
        with contextlib.suppress(Exception):  # the read fails either way
            await audit.record([event])

    return record
