"""Resource bodies sealed at the SQL boundary: everything above `storage.sql` sees plaintext.

Each version's body is sealed with the data key of its owner (`owner_of`) and the AAD
`(type, id, version, key id)`: a body copied to another row, or given another key id, fails
its integrity check on read (`IntegrityFailure`: never served; `on_tamper` is told first, which
records a security audit event). A body whose key was erased (crypto-shredding) reads as gone.
"""

from __future__ import annotations

import dataclasses
from base64 import b64decode, b64encode
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from santinel.crypto.blind_index import BlindTerms
from santinel.crypto.envelope import DataKey, Tampered, associated_data
from santinel.errors import FhirError
from santinel.fhir.compartment_membership import PATIENT, referenced_owners
from santinel.fhir.search.query import SearchQuery
from santinel.fhir.search.values import ExtractedValue
from santinel.storage.base import StoredVersion
from santinel.storage.sql.keystore import SHARED_OWNER, DataKeys, patient_owner
from santinel.storage.sql.search.blind import BlindSearch


@dataclass(frozen=True)
class BodyRef:
    resource_type: str
    resource_id: str
    version: int

    def text(self) -> str:
        return f"{self.resource_type}/{self.resource_id}/_history/{self.version}"


class IntegrityFailure(FhirError):
    """Stored data failed its integrity check: altered or moved in the database."""

    status = 500
    code = "exception"


TamperHook = Callable[[BodyRef, str], Awaitable[None]]
Prepare = Callable[[SearchQuery], SearchQuery]


def owner_of(resource_type: str, resource_id: str, values: Iterable[ExtractedValue]) -> str:
    """Whose data key seals a body (see `owner_for`)."""
    return owner_for(resource_type, compartment_patients(resource_type, resource_id, values))


def compartment_patients(
    resource_type: str, resource_id: str, values: Iterable[ExtractedValue]
) -> frozenset[str]:
    """The patients whose compartment holds a version, from its index values: a Patient is its
    own."""
    if resource_type == PATIENT:
        return frozenset({resource_id})
    return referenced_owners(resource_type, values)


def owner_for(resource_type: str, patients: frozenset[str]) -> str:
    """A Patient's or a resource in one patient's compartment: that patient's key; in several,
    the shared key (erased with none of them); in none, its type's."""
    if len(patients) == 1:
        return patient_owner(next(iter(patients)))
    return SHARED_OWNER if patients else f"type:{resource_type}"


def body_aad(ref: BodyRef, key_id: str) -> bytes:
    return associated_data(
        "santinel resource v1", ref.resource_type, ref.resource_id, str(ref.version), key_id
    )


class TxSealer(Protocol):
    async def seal(
        self, ref: BodyRef, owner: str, body: bytes, *, fresh: bool = False
    ) -> tuple[bytes, str | None]:
        """(sealed body, key id); `fresh`: the owner is new (a Patient created with a server-
        assigned id), so its first key is created without looking for one."""

    async def open(self, ref: BodyRef, body: bytes | None, key_id: str | None) -> bytes | None: ...

    def take_key_rows(self) -> list[dict[str, Any]]:
        """The `data_key` rows of the keys `seal` created since the last call: whoever began
        this sealing inserts them in the same transaction, before it commits."""

    def committed(self) -> None: ...


class Sealer(Protocol):
    """What the repository seals and opens bodies with (the bench's null cipher is another)."""

    plaintext_names: bool

    @property
    def blind(self) -> BlindTerms | None:
        """None: identifying values indexed in clear (bench only)."""

    def begin(self, connection: AsyncConnection, lock: bool) -> TxSealer: ...

    async def open(self, ref: BodyRef, body: bytes | None, key_id: str | None) -> bytes | None: ...

    async def refresh(self) -> None:
        """Learn of other processes' rotations (the blind-index keys a search looks up)."""

    async def close(self) -> None: ...


class KeyedSealer:
    """Production sealing: AES-256-GCM under per-owner data keys (`DataKeys`)."""

    def __init__(self, keys: DataKeys, *, plaintext_names: bool = False) -> None:
        self.keys = keys
        self.blind = keys.blind
        self.plaintext_names = plaintext_names
        self.on_tamper: TamperHook | None = None

    def begin(self, connection: AsyncConnection, lock: bool) -> TxSealer:
        return KeyedTxSealer(self, connection, lock)

    async def refresh(self) -> None:
        await self.keys.refresh()

    async def close(self) -> None:
        await self.keys.provider.close()

    async def open(self, ref: BodyRef, body: bytes | None, key_id: str | None) -> bytes | None:
        """The plaintext body; None when it has none or its key was erased."""
        if body is None:
            return None
        if key_id is None:
            return await self._unsealed(ref, body)
        try:
            key = await self.keys.data_key(key_id)
            return None if key is None else key.open(body, body_aad(ref, key_id))
        except Tampered as exc:
            raise await self.tampered(ref, str(exc)) from None

    async def _unsealed(self, ref: BodyRef, body: bytes) -> bytes:
        await self.keys.refresh()
        if self.keys.legacy_plaintext:  # written before encryption; `rotate-dek` seals it
            return body
        raise await self.tampered(ref, "a body without a data key")

    async def tampered(self, ref: BodyRef, why: str) -> IntegrityFailure:
        if self.on_tamper is not None:
            await self.on_tamper(ref, why)
        return IntegrityFailure(
            f"The stored data of {ref.resource_type}/{ref.resource_id} (version {ref.version}) "
            "failed its integrity check: it is not served, and the incident was recorded."
        )


class KeyedTxSealer:
    """Sealing inside one write transaction: keys it creates are cached once it commits."""

    def __init__(self, sealer: KeyedSealer, connection: AsyncConnection, lock: bool) -> None:
        self.sealer, self.connection, self.lock = sealer, connection, lock
        self.by_owner: dict[str, DataKey] = {}
        self.created: dict[str, DataKey] = {}
        self._key_rows: list[dict[str, Any]] = []

    async def seal(
        self, ref: BodyRef, owner: str, body: bytes, *, fresh: bool = False
    ) -> tuple[bytes, str | None]:
        key = self.by_owner.get(owner)
        if key is None:
            keys = self.sealer.keys
            found = 0 if fresh else await keys.active(self.connection, owner, self.lock)
            if isinstance(found, int):  # none yet, or retired or erased: a new generation
                found, row = await keys.create(self.connection, owner, found)
                self.created[found.key_id] = found
                self._key_rows.append(row)
            key = found
            self.by_owner[owner] = key
        return key.seal(body, body_aad(ref, key.key_id)), key.key_id

    async def open(self, ref: BodyRef, body: bytes | None, key_id: str | None) -> bytes | None:
        if body is None:
            return None
        if key_id is None:
            return await self.sealer._unsealed(ref, body)
        try:
            key = self.created.get(key_id) or await self.sealer.keys.data_key(
                key_id, self.connection
            )
            return None if key is None else key.open(body, body_aad(ref, key_id))
        except Tampered as exc:
            raise await self.sealer.tampered(ref, str(exc)) from None

    def take_key_rows(self) -> list[dict[str, Any]]:
        rows, self._key_rows = self._key_rows, []
        return rows

    def committed(self) -> None:
        keys = self.sealer.keys
        for key in self.created.values():
            keys.remember(key)
        for owner, key in self.by_owner.items():
            if key.key_id in self.created:  # its newest key now: the audit's events take it
                keys.remember_newest(owner, key)


class NoSealer:
    """What a repository opened without keys has: it stores and serves no resource body."""

    blind: BlindTerms | None = None
    plaintext_names = False

    def begin(self, connection: AsyncConnection, lock: bool) -> TxSealer:
        raise KeysNotLoaded()

    async def open(self, ref: BodyRef, body: bytes | None, key_id: str | None) -> bytes | None:
        if body is None:
            return None
        raise KeysNotLoaded()

    async def refresh(self) -> None:
        return None

    async def close(self) -> None:
        return None


class KeysNotLoaded(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "this repository was opened without its data keys (SqlRepository(…, sealer=…))"
        )


SNAPSHOTS = "type:search_snapshot"  # the data key of stored search queries
SEALED = "sealed:"


def snapshot_ref(resource_type: str | None) -> BodyRef:
    return BodyRef("search_snapshot", resource_type or "*", 0)


def search_preparer(sealer: Sealer) -> Prepare:
    """Searches on identifying parameters become blind-index lookups (`search.blind`)."""
    if sealer.blind is None:
        return _unchanged
    return BlindSearch(sealer.blind, sealer.plaintext_names).query


def _unchanged(query: SearchQuery) -> SearchQuery:
    return query


async def opened(
    open_body: Callable[[BodyRef, bytes | None, str | None], Awaitable[bytes | None]],
    stored: StoredVersion,
    key_id: str | None,
) -> StoredVersion:
    """`stored` with its body opened; a version whose data key was erased reads as deleted."""
    if stored.body is None:
        return stored
    ref = BodyRef(stored.resource_type, stored.resource_id, stored.version)
    body = await open_body(ref, stored.body, key_id)
    if body is None:
        return dataclasses.replace(stored, deleted=True, body=None)
    return dataclasses.replace(stored, body=body)


async def seal_snapshot_query(sealing: TxSealer, resource_type: str | None, query: str) -> str:
    """A paged search's stored query (it may name a patient: `family=…`), sealed like a body."""
    sealed, key_id = await sealing.seal(snapshot_ref(resource_type), SNAPSHOTS, query.encode())
    return query if key_id is None else f"{SEALED}{key_id}:{b64encode(sealed).decode()}"


async def open_snapshot_query(sealer: Sealer, resource_type: str | None, stored: str) -> str:
    if not stored.startswith(SEALED):
        return stored  # the bench's null cipher, or a snapshot from before 0008
    key_id, _, sealed = stored.removeprefix(SEALED).partition(":")
    query = await sealer.open(snapshot_ref(resource_type), b64decode(sealed), key_id)
    return (query or b"").decode()
