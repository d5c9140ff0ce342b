"""Crypto-shredding (RGPD art. 17) and legal holds.

Erasing a patient destroys every data key of their compartment (`Patient/<id>`, every
generation) and the index rows of the resources those keys seal, and marks those resources
deleted, in one transaction with its audit tombstone. Their versions stay in the database as
ciphertext nobody can open: reads answer 410, histories skip them. A resource sealed with the
shared key (in several patients' compartments) or moved to another patient is not erased.

The audit events about the patient were sealed with the same keys (`audit_sealing`): their
details (the query they were found by, addresses, purpose) become unreadable too, and they are
served as their clear columns only (`audit.erased`); the chain, over the sealed bytes, still
verifies. The tombstone itself is sealed with the class key: the proof of erasure stays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from santinel.audit.records import AuditRecord
from santinel.errors import Conflict, Gone, NotFound
from santinel.fhir.resource import now_micros
from santinel.storage.sql import dialects
from santinel.storage.sql.keystore import bump_epoch, patient_owner
from santinel.storage.sql.repository import SqlRepository
from santinel.storage.sql.sealing import KeyedSealer
from santinel.storage.sql.tables import (
    INDEX_TABLES,
    audit_event,
    data_key,
    legal_hold,
    resource,
    resource_history,
)
from santinel.storage.sql.write_transaction import SqlWriteTransaction


@dataclass(frozen=True)
class ErasureReport:
    patient_id: str
    keys: tuple[str, ...]  # the data keys destroyed
    resources: int  # resources whose current version became unreadable
    versions: int  # versions (current and history) that became unreadable
    audit_events: int = 0  # audit events about the patient whose details became unreadable


class UnderLegalHold(Conflict):
    """The patient's record is under a legal hold: erasure is refused until it is released."""


Tombstone = Callable[[ErasureReport], Sequence[AuditRecord]]


async def erase_patient(
    repository: SqlRepository, patient_id: str, tombstone: Tombstone
) -> ErasureReport:
    async def work(tx: SqlWriteTransaction) -> ErasureReport:
        tx.erased_owners.add(patient_owner(patient_id))  # the tombstone: the class key
        report = await _erase(tx.connection, patient_id)
        tx.add_audit(tombstone(report))
        return report

    report = await repository.run_write(work)
    if isinstance(repository.sealer, KeyedSealer):
        repository.sealer.keys.forget(set(report.keys), erased=True)
    return report


async def _erase(connection: AsyncConnection, patient_id: str) -> ErasureReport:
    hold = await connection.execute(
        select(legal_hold.c.reason).where(legal_hold.c.patient_id == patient_id)
    )
    reason = hold.scalar()
    if reason is not None:
        raise UnderLegalHold(
            f"Patient/{patient_id} is under a legal hold ({reason}): release it first."
        )
    c = data_key.c
    owned = select(c.key_id).where(c.owner == patient_owner(patient_id), c.erased_us.is_(None))
    if dialects.lock_clause(connection.dialect.name):
        owned = owned.with_for_update()  # writers sealing with these keys wait, or come after
    keys = tuple(row.key_id for row in await connection.execute(owned))
    if not keys:
        await _nothing_to_erase(connection, patient_id)
    sealed = select(resource.c.res_type, resource.c.res_id).where(resource.c.key_id.in_(keys))
    current = [(row.res_type, row.res_id) for row in await connection.execute(sealed)]
    for table in INDEX_TABLES:
        for resource_type, ids in _by_type(current).items():
            await connection.execute(
                delete(table).where(table.c.res_type == resource_type, table.c.res_id.in_(ids))
            )
    await connection.execute(
        update(resource).where(resource.c.key_id.in_(keys)).values(deleted=True)
    )
    counted = select(func.count()).where(resource_history.c.key_id.in_(keys))
    versions = int((await connection.execute(counted)).scalar_one())
    events = await _audit_events(connection, patient_id, keys)
    await connection.execute(
        update(data_key).where(c.key_id.in_(keys)).values(wrapped=None, erased_us=now_micros())
    )
    await bump_epoch(connection)
    return ErasureReport(patient_id, keys, len(current), versions, events)


async def _audit_events(connection: AsyncConnection, patient_id: str, keys: tuple[str, ...]) -> int:
    """The patient's audit events sealed with these keys (found by the patient index)."""
    a = audit_event.c
    counted = select(func.count()).where(a.patient == patient_id, a.key_id.in_(keys))
    return int((await connection.execute(counted)).scalar_one())


async def _nothing_to_erase(connection: AsyncConnection, patient_id: str) -> None:
    c = data_key.c
    erased = select(c.key_id).where(c.owner == patient_owner(patient_id), c.erased_us.is_not(None))
    if (await connection.execute(erased.limit(1))).first() is not None:
        raise Gone(f"Patient/{patient_id} was erased already.")
    raise NotFound(f"Patient/{patient_id} has no data on this server.")


def _by_type(refs: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for resource_type, resource_id in refs:
        grouped.setdefault(resource_type, []).append(resource_id)
    return grouped


# -- legal holds ------------------------------------------------------------------------------
async def place_hold(repository: SqlRepository, patient_id: str, reason: str) -> bool:
    """Hold `patient_id`'s record; False when it was held already (the first reason stays)."""
    async with repository.writer.begin() as connection:
        held = select(legal_hold.c.patient_id).where(legal_hold.c.patient_id == patient_id)
        if (await connection.execute(held)).first() is not None:
            return False
        await connection.execute(
            insert(legal_hold).values(patient_id=patient_id, reason=reason, placed_us=now_micros())
        )
    return True


async def release_hold(repository: SqlRepository, patient_id: str) -> bool:
    async with repository.writer.begin() as connection:
        result = await connection.execute(
            delete(legal_hold).where(legal_hold.c.patient_id == patient_id)
        )
    return bool(result.rowcount)
