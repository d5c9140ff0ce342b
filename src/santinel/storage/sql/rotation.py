"""Key rotation. `rotate-kek`: every data key re-wrapped by a new KEK, in one transaction, data
untouched (seconds). `rotate-dek`: every data key retired (new writes take a new generation at
once), then every version sealed with a retired key re-sealed with its owner's new key, batch by
batch while the server serves; retired keys with no version left are deleted. Versions written
before encryption (no key id) are sealed by the same pass, and their index rows rebuilt.

`rotate-blind-index`: a new blind-index key becomes the one index rows are written with while
the old one is still searched (`BlindKeyring`); once every node has seen it, every live resource's
index rows are rebuilt under it, then the old key is deleted.

Audit bodies are not re-sealed: the hash chain covers their sealed bytes (and signed checkpoints
and exported copies cover the chain). New events take the new generations (the class key's at
once, a patient's from their next write); a retired key is kept while audit records use it,
until retention prunes them (`finish_rotation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from santinel.crypto.key_providers import KeyProvider, VaultTransitProvider
from santinel.fhir.resource import now_micros
from santinel.fhir.search.extract import extract
from santinel.storage.sql import dialects
from santinel.storage.sql.keystore import (
    CHECK_OWNER,
    INDEX_OWNER,
    KeyedSealerRequired,
    bump_epoch,
    wrap_context,
)
from santinel.storage.sql.repository import SqlRepository
from santinel.storage.sql.sealing import BodyRef, KeyedSealer, owner_of
from santinel.storage.sql.tables import (
    audit_event,
    data_key,
    keystore_state,
    resource,
    resource_history,
)
from santinel.storage.sql.write_transaction import SqlWriteTransaction

INTERNAL_OWNERS = (CHECK_OWNER, INDEX_OWNER)


async def rewrap_all(repository: SqlRepository, old: KeyProvider, new: KeyProvider) -> int:
    """Re-wrap every data key from `old` to `new` (`new is old`: a Vault key's latest version);
    the number of keys re-wrapped."""
    c = data_key.c
    async with repository.writer.begin() as connection:
        rows = (
            await connection.execute(
                select(c.key_id, c.owner, c.wrapped).where(c.wrapped.is_not(None))
            )
        ).all()
        rewrapped = await _rewrap(old, new, rows)
        if rows:
            await connection.execute(
                update(data_key)
                .where(c.key_id == bindparam("b_key_id"))
                .values(wrapped=bindparam("b_wrapped"), kek_id=new.kek_id),
                [
                    {"b_key_id": row.key_id, "b_wrapped": wrapped}
                    for row, wrapped in zip(rows, rewrapped, strict=True)
                ],
            )
        await bump_epoch(connection)
    return len(rows)


async def _rewrap(old: KeyProvider, new: KeyProvider, rows: Sequence[Any]) -> list[bytes]:
    """Each row's key wrapped by `new`: Vault re-wraps in batches without the keys leaving it;
    other providers unwrap and wrap each here."""
    if new is old and isinstance(old, VaultTransitProvider):
        return await old.rewrap([row.wrapped for row in rows])
    rewrapped = []
    for row in rows:
        context = wrap_context(row.key_id, row.owner)
        rewrapped.append(await new.wrap(await old.unwrap(row.wrapped, context), context))
    return rewrapped


async def retire_data_keys(repository: SqlRepository) -> int:
    """Retire every active data key: writes seal with a new generation from now on."""
    c = data_key.c
    async with repository.writer.begin() as connection:
        result = await connection.execute(
            update(data_key)
            .where(c.retired_us.is_(None), c.erased_us.is_(None), c.owner.not_in(INTERNAL_OWNERS))
            .values(retired_us=now_micros())
        )
        await bump_epoch(connection)
    return int(result.rowcount or 0)


def _to_reseal() -> ColumnElement[bool]:
    """Versions sealed with a retired (not erased) key, or never sealed."""
    h, c = resource_history.c, data_key.c
    retired = select(c.key_id).where(c.retired_us.is_not(None), c.erased_us.is_(None))
    return or_(h.key_id.in_(retired), and_(h.key_id.is_(None), h.body.is_not(None)))


async def pending_versions(repository: SqlRepository) -> int:
    query = select(func.count()).select_from(resource_history).where(_to_reseal())
    async with repository.reader.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


async def reseal_batch(repository: SqlRepository, after_seq: int, size: int) -> tuple[int, int]:
    """Re-seal the next `size` versions to do after `after_seq`: (last seq seen, versions
    re-sealed); last seq 0 when there are no more."""
    if not isinstance(repository.sealer, KeyedSealer):
        raise KeyedSealerRequired()
    h = resource_history.c

    async def work(tx: SqlWriteTransaction) -> tuple[int, int]:
        query = select(resource_history).where(_to_reseal(), h.seq > after_seq)
        query = query.order_by(h.seq).limit(size)
        if dialects.lock_clause(tx.connection.dialect.name):
            query = query.with_for_update()
        rows = (await tx.connection.execute(query)).all()
        done = 0
        for row in rows:
            done += await _reseal(tx, row)
        return (rows[-1].seq if rows else 0), done

    return await repository.run_write(work)


async def _reseal(tx: SqlWriteTransaction, row: Any) -> int:
    seq, key_id, body = row.seq, row.key_id, row.body
    ref = BodyRef(row.res_type, row.res_id, row.version)
    owner = await _owner(tx.connection, key_id, lock=True) if key_id else None
    if key_id is not None and owner is None:
        return 0  # erased meanwhile
    plaintext = await tx.sealing().open(ref, body, key_id)
    if plaintext is None:
        return 0
    if owner is None:  # written before encryption: its owner from its content
        owner = owner_of(ref.resource_type, ref.resource_id, extract(orjson.loads(plaintext)))
    sealed, new_key = await tx.sealing().seal(ref, owner, plaintext)
    h, r = resource_history.c, resource.c
    await tx.connection.execute(
        update(resource_history).where(h.seq == seq).values(body=sealed, key_id=new_key)
    )
    same_key = r.key_id.is_(None) if key_id is None else r.key_id == key_id
    current = await tx.connection.execute(
        update(resource)
        .where(
            r.res_type == ref.resource_type,
            r.res_id == ref.resource_id,
            r.version == ref.version,
            same_key,
        )
        .values(body=sealed, key_id=new_key)
    )
    if key_id is None and current.rowcount and not row.deleted:
        tx.reindex(ref.resource_type, ref.resource_id, plaintext)  # blind indexes, at last
    return 1


async def _owner(connection: AsyncConnection, key_id: str, *, lock: bool) -> str | None:
    c = data_key.c
    query = select(c.owner).where(c.key_id == key_id, c.erased_us.is_(None))
    if lock and dialects.lock_clause(connection.dialect.name):
        query = query.with_for_update(read=True)
    return (await connection.execute(query)).scalar()


async def finish_rotation(repository: SqlRepository) -> int:
    """Delete the retired keys no version and no audit record uses any more; the number
    deleted. Clears the `legacy_plaintext` flag once no version lacks a key."""
    c, h, r, a = data_key.c, resource_history.c, resource.c, audit_event.c
    # audit_event has no index on key_id (one more per event on the audit's hot path): its key
    # ids are read in one pass, not looked up per key
    sealing_audit = select(a.key_id).where(a.key_id.is_not(None)).distinct()
    unused = and_(
        c.retired_us.is_not(None),
        c.erased_us.is_(None),
        c.owner.not_in(INTERNAL_OWNERS),  # a blind-index key retires with its own rotation
        ~exists().where(h.key_id == c.key_id),
        ~exists().where(r.key_id == c.key_id),
        c.key_id.not_in(sealing_audit),
    )
    async with repository.writer.begin() as connection:
        result = await connection.execute(delete(data_key).where(unused))
        legacy = select(h.seq).where(h.key_id.is_(None), h.body.is_not(None)).limit(1)
        if (await connection.execute(legacy)).first() is None:
            await connection.execute(
                update(keystore_state)
                .where(keystore_state.c.name == "legacy_plaintext")
                .values(value=0)
            )
        await bump_epoch(connection)
    return int(result.rowcount or 0)


# -- the blind-index key ------------------------------------------------------------------------


async def start_blind_index_rotation(repository: SqlRepository) -> tuple[bool, int]:
    """Retire the blind-index key and create the next one, which index rows are written with
    from now on (searches look up both until `finish_blind_index_rotation`). (True, now) when
    this call switched the keys; (False, when they were switched) when an interrupted rotation
    already had: it resumes."""
    if not isinstance(repository.sealer, KeyedSealer):
        raise KeyedSealerRequired()
    keys = repository.sealer.keys
    c = data_key.c
    mine = select(c.generation, c.retired_us, c.created_us).where(
        c.owner == INDEX_OWNER, c.erased_us.is_(None)
    )
    async with repository.writer.begin() as connection:
        rows = (await connection.execute(mine.order_by(c.generation.desc()))).all()
        if any(row.retired_us is not None for row in rows):
            return False, int(rows[0].created_us)
        switched = now_micros()
        await connection.execute(
            update(data_key)
            .where(c.owner == INDEX_OWNER, c.retired_us.is_(None))
            .values(retired_us=switched)
        )
        await keys.create_internal(connection, INDEX_OWNER, int(rows[0].generation) + 1)
        await bump_epoch(connection)
    await keys.reload()
    return True, switched


async def finish_blind_index_rotation(repository: SqlRepository) -> int:
    """Delete the retired blind-index keys: every row is under the active one by now. The
    number deleted."""
    c = data_key.c
    async with repository.writer.begin() as connection:
        result = await connection.execute(
            delete(data_key).where(c.owner == INDEX_OWNER, c.retired_us.is_not(None))
        )
        await bump_epoch(connection)
    if isinstance(repository.sealer, KeyedSealer):
        await repository.sealer.keys.reload()
    return int(result.rowcount or 0)
