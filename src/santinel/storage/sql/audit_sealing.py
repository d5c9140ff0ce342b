"""Audit bodies sealed at rest (0011): services see AuditEvent JSON, the database ciphertext.

An audit body says who searched for whom (the query, `name=Dupont&birthdate=…`, as base64), from
which address and why: as sensitive as the data itself. Each is sealed (AES-256-GCM,
`crypto.envelope`) with:

- the data key of its patient (`AuditRecord.patient`), the newest one, retired or not: erasing
  the patient (crypto-shredding, `erasure`) destroys every generation, so the details of every
  event about them become unreadable too, while the chain, which covers the sealed bytes, still
  verifies (`audit.chain`);
- the class key `type:audit` for an event about no patient, or about a patient without a
  usable key: one who never had one (they have nothing to erase: erasure answers 404), or one
  already erased (the erasure's own record, a 410 after it). The audit path never creates a
  patient's key: re-creating an erased patient's key would bring their keyring back, and a
  second erasure would then shred the proof of the first; nor would a read's group commit wait
  for a KEK wrap (a Vault round trip) or race another node for a key's generation. The class
  key is created when missing (the first event, or after `rotate-dek` retired it), its row
  inserted in the transaction of the events it seals (`SealingPlan.key_rows`).

The AAD is (event id, seq, key id): a body moved to another record, or given another key id,
does not open. The seq is known under the chain lock only, so sealing happens there (`stored`,
synchronous, a few µs); the keys are chosen before (`plan`: cached by owner, `DataKeys`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from santinel.audit.records import AuditRecord
from santinel.crypto.envelope import DataKey, associated_data
from santinel.storage.sql.keystore import DataKeys, patient_owner
from santinel.storage.sql.sealing import BodyRef, IntegrityFailure, KeyedSealer, KeysNotLoaded

AUDIT_OWNER = "type:audit"
AAD_LABEL = "santinel audit v1"


def audit_aad(event_id: str, seq: int, key_id: str) -> bytes:
    return associated_data(AAD_LABEL, event_id, str(seq), key_id)


def audit_ref(record: AuditRecord, seq: int) -> BodyRef:
    """How an integrity failure names an audit record (its security event's entity)."""
    return BodyRef("AuditEvent", str(record.event_id), seq)


@dataclass(frozen=True)
class SealingPlan:
    """Records to chain, each with the key that seals it (None: stored as built, the bench's
    null cipher only), and the `data_key` rows of keys created for them: inserted with them,
    in the same transaction."""

    records: Sequence[AuditRecord]
    keys: Sequence[DataKey | None]
    key_rows: Sequence[dict[str, Any]] = ()
    created: Sequence[tuple[str, DataKey]] = ()  # (owner, key): cached once committed


def stored(record: AuditRecord, seq: int, key: DataKey | None) -> tuple[bytes, str | None]:
    """(body as stored, key id) of `record` chained at `seq`."""
    if key is None:
        return record.body, None
    return key.seal(record.body, audit_aad(record.event_id, seq, key.key_id)), key.key_id


class AuditSealer(Protocol):
    seals: bool  # False: a record stored in clear is what this sealer writes (bench only)

    async def plan(
        self,
        records: Sequence[AuditRecord],
        *,
        connection: AsyncConnection | None = None,
        known: Mapping[str, DataKey] | None = None,
        excluded: Set[str] = frozenset(),
    ) -> SealingPlan:
        """The keys sealing `records`. `connection`: a write transaction's own (its view of the
        keys, its erasure included), else the committed state; `known`: keys that transaction
        sealed with (a patient created in it); `excluded`: owners it erases."""

    def committed(self, plan: SealingPlan) -> None: ...

    async def unseal(self, record: AuditRecord, seq: int) -> bytes | None:
        """The JSON of a sealed record; None when its key was erased; `Tampered`."""

    async def tampered(self, record: AuditRecord, seq: int, why: str) -> IntegrityFailure: ...


class KeyedAuditSealer:
    """Production sealing with the repository's data keys (`KeyedSealer`)."""

    seals = True

    def __init__(self, sealer: KeyedSealer) -> None:
        self.sealer = sealer
        self.keys: DataKeys = sealer.keys

    async def plan(
        self,
        records: Sequence[AuditRecord],
        *,
        connection: AsyncConnection | None = None,
        known: Mapping[str, DataKey] | None = None,
        excluded: Set[str] = frozenset(),
    ) -> SealingPlan:
        await self.keys.refresh()  # another node's erasure or rotation: drop what it changed
        choice = _Choice(self.keys, connection, known or {}, excluded)
        chosen: dict[str | None, DataKey] = {}
        keys: list[DataKey | None] = []
        for record in records:
            key = chosen.get(record.patient)
            if key is None:
                key = chosen[record.patient] = await choice.key_for(record.patient)
            keys.append(key)
        return SealingPlan(records, keys, choice.key_rows, choice.created)

    def committed(self, plan: SealingPlan) -> None:
        for owner, key in plan.created:
            self.keys.remember(key)
            self.keys.remember_newest(owner, key)

    async def unseal(self, record: AuditRecord, seq: int) -> bytes | None:
        key_id = str(record.key_id)
        key = await self.keys.data_key(key_id)
        return (
            None if key is None else key.open(record.body, audit_aad(record.event_id, seq, key_id))
        )

    async def tampered(self, record: AuditRecord, seq: int, why: str) -> IntegrityFailure:
        return await self.sealer.tampered(audit_ref(record, seq), why)


class _Choice:
    """Choosing the keys of one plan (see the module's docstring for the rules)."""

    def __init__(
        self,
        keys: DataKeys,
        connection: AsyncConnection | None,
        known: Mapping[str, DataKey],
        excluded: Set[str],
    ) -> None:
        self.keys, self.connection, self.known, self.excluded = keys, connection, known, excluded
        self.key_rows: list[dict[str, Any]] = []
        self.created: list[tuple[str, DataKey]] = []
        self._class: DataKey | None = None  # once per plan: created at most once

    async def key_for(self, patient: str | None) -> DataKey:
        if patient is None:
            return await self._class_key()
        owner = patient_owner(patient)
        key = self.known.get(owner)
        if key is None and owner not in self.excluded:
            key = self.keys.newest_cached(owner)
        if key is not None:
            return key
        row = await self.keys.newest(owner, self.connection)
        if row is None or row.erased_us is not None:
            return await self._class_key()
        key = await self.keys.unwrapped(row, owner)
        if owner not in self.excluded:
            self.keys.remember_newest(owner, key)
        return key

    async def _class_key(self) -> DataKey:
        if self._class is None:
            self._class = await self._find_or_create_class_key()
        return self._class

    async def _find_or_create_class_key(self) -> DataKey:
        key = self.keys.newest_cached(AUDIT_OWNER)
        if key is not None:
            return key
        row = await self.keys.newest(AUDIT_OWNER, self.connection)
        if row is not None and row.retired_us is None and row.erased_us is None:
            key = await self.keys.unwrapped(row, AUDIT_OWNER)
            self.keys.remember_newest(AUDIT_OWNER, key)
            return key
        after = row.generation if row is not None else 0
        if self.connection is not None:
            key, key_row = await self.keys.create(self.connection, AUDIT_OWNER, after)
        else:
            async with self.keys.reader.connect() as reading:  # checks the KEK, inserts nothing
                key, key_row = await self.keys.create(reading, AUDIT_OWNER, after)
        self.key_rows.append(key_row)
        self.created.append((AUDIT_OWNER, key))
        return key


class NoAuditSealer:
    """A store opened without the data keys (administration commands): it verifies the chain
    and reads records stored in clear, and writes none."""

    seals = True

    async def plan(
        self,
        records: Sequence[AuditRecord],
        *,
        connection: AsyncConnection | None = None,
        known: Mapping[str, DataKey] | None = None,
        excluded: Set[str] = frozenset(),
    ) -> SealingPlan:
        raise KeysNotLoaded()

    def committed(self, plan: SealingPlan) -> None:
        return None

    async def unseal(self, record: AuditRecord, seq: int) -> bytes | None:
        raise KeysNotLoaded()

    async def tampered(self, record: AuditRecord, seq: int, why: str) -> IntegrityFailure:
        ref = audit_ref(record, seq)
        return IntegrityFailure(
            f"The stored data of {ref.resource_type}/{ref.resource_id} (seq {seq}) failed its "
            f"integrity check ({why})."
        )
