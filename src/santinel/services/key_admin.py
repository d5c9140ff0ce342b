"""Key administration for the CLI: KEK, DEK and blind-index key rotation on a database opened
with its keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from santinel.crypto.envelope import new_key
from santinel.crypto.key_providers import (
    EnvKeyProvider,
    FileKeyProvider,
    KeyProvider,
    KeyProviderError,
    VaultTransitProvider,
    write_key_file,
)
from santinel.services.container import name_indexes_match, prepare_schema
from santinel.services.encryption import open_sealer, promote_next_key_file
from santinel.settings import Settings
from santinel.storage.sql import rotation
from santinel.storage.sql.keystore import RECHECK_SECONDS
from santinel.storage.sql.repository import SqlRepository
from santinel.storage.sql.sealing import KeyedSealer


@asynccontextmanager
async def opened_repository(settings: Settings) -> AsyncIterator[SqlRepository]:
    """The repository of `settings`, schema current, bodies sealed with its data keys."""
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    repository = SqlRepository(settings.resolved_database_url())
    try:
        await prepare_schema(repository, migrate_empty=True)
        repository.use_sealer(await open_sealer(settings, repository))
        await name_indexes_match(repository)  # a rotation rebuilds index rows: in the same mode
        yield repository
    finally:
        await repository.close()


@dataclass(frozen=True)
class KekRotation:
    keys: int  # data keys re-wrapped
    kek_id: str  # the new KEK
    advice: str  # what the operator does next


async def rotate_kek(settings: Settings, new_kek_text: str | None = None) -> KekRotation:
    async with opened_repository(settings) as repository:
        if not isinstance(repository.sealer, KeyedSealer):
            raise KeyProviderError("the database was opened without its keys")
        old = repository.sealer.keys.provider
        new, finish = await _next_provider(old, new_kek_text)
        count = await rotation.rewrap_all(repository, old, new)
        advice = finish()
        return KekRotation(count, new.kek_id, advice)


async def _next_provider(
    old: KeyProvider, new_kek_text: str | None
) -> tuple[KeyProvider, Callable[[], str]]:
    if isinstance(old, FileKeyProvider):
        if not old.next_path.exists():  # else: an interrupted rotation's key, used again
            write_key_file(old.next_path, new_key())
        new = FileKeyProvider(old.next_path)

        def promote() -> str:
            retired = promote_next_key_file(old.path)
            return (
                f"The new KEK is in {old.path}; running servers pick it up on their own. The "
                f"old one is kept in {retired}: destroy it once no backup made before now "
                "needs restoring (erasures reach those backups only then)."
            )

        return new, promote
    if isinstance(old, EnvKeyProvider):
        if not new_kek_text:
            raise KeyProviderError("the env provider needs the new KEK (--new-kek-stdin)")
        env = EnvKeyProvider(new_kek_text, "standard input")
        return (
            env,
            lambda: (
                "Set SANTINEL_KEK to the new key and restart every node now; destroy the old key "
                "once no backup made before now needs restoring."
            ),
        )
    if isinstance(old, VaultTransitProvider):
        await old.rotate()
        return (
            old,
            lambda: (
                f"Vault's transit key is at {old.kek_id}. Once no backup made before now needs "
                "restoring, raise its min_decryption_version to that version so older wraps (and "
                "erased patients' keys in old backups) can no longer be opened."
            ),
        )
    raise KeyProviderError(f"rotation is not supported for {old.description}")


async def rotate_dek(
    settings: Settings, batch: int, progress: Callable[[int, int], None]
) -> tuple[int, int]:
    """Retire every data key, re-seal every version with its owner's new key (`progress(done,
    total)` after each batch), delete the retired keys; (versions re-sealed, keys deleted)."""
    async with opened_repository(settings) as repository:
        await rotation.retire_data_keys(repository)
        total = await rotation.pending_versions(repository)
        done, after = 0, 0
        progress(done, total)
        while True:
            after, count = await rotation.reseal_batch(repository, after, batch)
            done += count
            progress(min(done, total), total)
            if after == 0:
                break
        deleted = await rotation.finish_rotation(repository)
        return done, deleted


# Every node reloads its keys within RECHECK_SECONDS of a rotation (`DataKeys.refresh`, before
# each write and search): after this grace, no node writes rows under the retired key.
BLIND_GRACE_SECONDS = 2 * RECHECK_SECONDS + 1
# A node's clock may be behind this one's: resources written since the switch, by that clock,
# are rebuilt a second time at the end.
CLOCK_SKEW_US = 60 * 1_000_000


@dataclass(frozen=True)
class BlindIndexRotation:
    resumed: bool  # an interrupted rotation finished
    resources: int  # live resources whose index rows were rebuilt
    keys_deleted: int  # retired blind-index keys


async def rotate_blind_index(
    settings: Settings,
    batch: int,
    progress: Callable[[int, int], None],
    *,
    grace_seconds: float = BLIND_GRACE_SECONDS,
) -> BlindIndexRotation:
    """A new blind-index key: every node writes index rows under it (and searches under both
    keys) once it has seen it; then every live resource's rows are rebuilt under it (`progress
    (done, total)` after each batch of `batch`), those written meanwhile once more, and the old
    key deleted. Run again after an interruption, it resumes."""
    async with opened_repository(settings) as repository:
        started, switched_us = await rotation.start_blind_index_rotation(repository)
        waited = time.time() - switched_us / 1_000_000
        await asyncio.sleep(max(0.0, grace_seconds - waited))
        total = await repository.live_count()
        done = 0
        progress(done, total)
        after = await repository.reindex_batch(None, batch)
        while after is not None:
            done = min(done + batch, total)
            progress(done, total)
            after = await repository.reindex_batch(after, batch)
        progress(total, total)
        since_us = switched_us - CLOCK_SKEW_US
        after = await repository.reindex_batch(None, batch, since_us=since_us)
        while after is not None:
            after = await repository.reindex_batch(after, batch, since_us=since_us)
        deleted = await rotation.finish_blind_index_rotation(repository)
        return BlindIndexRotation(not started, total, deleted)
