"""One database transaction of writes (`SqlWriteTransaction`): versions, their index rows and
audit records, flushed in batches and committed together by `SqlRepository.run_write`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection

from santinel.audit.records import AuditRecord
from santinel.fhir.json import dumps, loads
from santinel.fhir.resource import now_micros, stamp
from santinel.fhir.search.extract import extract
from santinel.fhir.search.query import SearchQuery
from santinel.storage.base import Method, StoredVersion
from santinel.storage.sql import batch_writes, dialects
from santinel.storage.sql.audit_sealing import AuditSealer, NoAuditSealer, SealingPlan
from santinel.storage.sql.batch_writes import Batch
from santinel.storage.sql.rows import current_version, find_ids, key_inserts, select_current
from santinel.storage.sql.sealing import (
    BodyRef,
    KeyedTxSealer,
    NoSealer,
    Sealer,
    TxSealer,
    compartment_patients,
    opened,
    owner_for,
    search_preparer,
)
from santinel.storage.sql.search import executor
from santinel.storage.sql.search.blind import BlindRows
from santinel.storage.sql.search.indexing import IndexBuffer, chunks
from santinel.storage.sql.tables import resource, resource_history
from santinel.types import ResourceId, ResourceType, VersionId

# Built once: every update executes it with its own values (no per-row statement building).
UPDATE_CURRENT = (
    update(resource)
    .where(
        resource.c.res_type == bindparam("_res_type"),
        resource.c.res_id == bindparam("_res_id"),
        resource.c.version == bindparam("_version"),
    )
    .values(
        version=bindparam("version"),
        last_updated=bindparam("last_updated"),
        deleted=bindparam("deleted"),
        body=bindparam("body"),
        key_id=bindparam("key_id"),
    )
)


class SqlWriteTransaction:
    """One database transaction of writes, handed to the caller's unit of work."""

    def __init__(
        self,
        connection: AsyncConnection,
        sealer: Sealer | None = None,
        audit_sealer: AuditSealer | None = None,
    ) -> None:
        self.connection = connection
        self._lock_rows = dialects.lock_clause(connection.dialect.name)
        self._last_updated = 0
        self._sealer: Sealer = sealer or NoSealer()
        self._sealing: TxSealer | None = None  # begun at the first body sealed or opened
        self._prepare = search_preparer(self._sealer)
        blind = self._sealer.blind
        self._index = IndexBuffer(BlindRows(blind, self._sealer.plaintext_names) if blind else None)
        self._history: list[dict[str, Any]] = []
        # First versions, inserted in one batch at `flush` (a resource is new to the database
        # until then: its current version is in `_known`).
        self._inserts: dict[tuple[str, str], dict[str, Any]] = {}
        # Current versions this transaction read ahead (`preload`: sealed, opened when asked
        # for) or wrote (plaintext): `current` answers them without a round trip.
        self._preloaded: dict[tuple[str, str], tuple[StoredVersion, str | None] | None] = {}
        self._known: dict[tuple[str, str], StoredVersion] = {}
        # every version this transaction wrote, with the one it replaced (audit: whose data)
        self.written: list[tuple[StoredVersion, StoredVersion | None]] = []
        # the patients whose compartment holds each version written with a body (from its
        # index values, already extracted: the audit need not evaluate them again)
        self.patients: dict[tuple[str, str, int], frozenset[str]] = {}
        self.audit_records: list[AuditRecord] = []  # appended to the audit chain before commit
        self._audit_sealer: AuditSealer = audit_sealer or NoAuditSealer()
        self._audit_plan: SealingPlan | None = None
        # owners whose keys this transaction erases: its audit records never take them
        self.erased_owners: set[str] = set()

    async def current(
        self, resource_type: ResourceType, resource_id: ResourceId
    ) -> StoredVersion | None:
        key = (resource_type, resource_id)
        if key in self._known:
            return self._known[key]
        if key in self._preloaded:
            found = self._preloaded[key]
            return None if found is None else await opened(self.sealing().open, *found)
        query = select_current().where(
            resource.c.res_type == resource_type, resource.c.res_id == resource_id
        )
        if self._lock_rows:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        if row is None:
            return None
        return await opened(self.sealing().open, current_version(row), row.key_id)

    async def preload(self, refs: Iterable[tuple[ResourceType, ResourceId]]) -> None:
        """Read (and lock, where rows lock) the current versions of these resources in one
        statement per 500, instead of one round trip each in `current`; opened when asked for
        (an integrity failure then names the entry that asked)."""
        wanted = sorted({key for key in refs if key not in self._known} - self._preloaded.keys())
        for chunk in chunks(wanted):
            query = select_current().where(
                executor.refs_in(resource.c.res_type, resource.c.res_id, chunk)
            )
            if self._lock_rows:
                query = query.with_for_update()
            rows = {(row.res_type, row.res_id): row for row in await self.connection.execute(query)}
            for key in chunk:
                row = rows.get(key)
                self._preloaded[key] = None if row is None else (current_version(row), row.key_id)

    def locks_rows(self) -> bool:
        return self._lock_rows

    def sealing(self) -> TxSealer:
        if self._sealing is None:
            self._sealing = self._sealer.begin(self.connection, self._lock_rows)
        return self._sealing

    def committed(self) -> None:
        """The transaction committed: keys it created may now be cached."""
        if self._sealing is not None:
            self._sealing.committed()
        if self._audit_plan is not None:
            self._audit_sealer.committed(self._audit_plan)

    async def write_version(
        self,
        resource_type: ResourceType,
        resource_id: ResourceId,
        resource_json: dict[str, Any] | None,
        *,
        previous: StoredVersion | None,
        method: Method,
    ) -> StoredVersion:
        version = VersionId(previous.version + 1 if previous else 1)
        last_updated = self._next_timestamp()
        stamped = None
        if resource_json is not None:
            stamped = stamp(resource_json, resource_id, version, last_updated)
        body = dumps(stamped) if stamped is not None else None
        values = extract(stamped) if stamped is not None else []
        sealed, key_id = None, None
        if body is not None:  # sealed with its owner's data key; StoredVersion keeps plaintext
            # whose data it is, once: it picks the data key and tells the audit
            patients = compartment_patients(resource_type, resource_id, values)
            self.patients[(resource_type, resource_id, version)] = patients
            owner = owner_for(resource_type, patients)
            ref = BodyRef(resource_type, resource_id, version)
            # a Patient POSTed gets a fresh random id: no key can exist for it yet
            fresh = method == "POST" and previous is None and resource_type == "Patient"
            sealed, key_id = await self.sealing().seal(ref, owner, body, fresh=fresh)
        row = {
            "version": version,
            "last_updated": last_updated,
            "deleted": resource_json is None,
            "body": sealed,
            "key_id": key_id,
        }
        key = (resource_type, resource_id)
        if previous is None:
            self._inserts[key] = {"res_type": resource_type, "res_id": resource_id, **row}
        else:
            if key in self._inserts:  # first written by this transaction, not yet inserted
                await self._insert_new()
            where = {"_res_type": resource_type, "_res_id": resource_id}
            result = await self.connection.execute(
                UPDATE_CURRENT, {**where, "_version": previous.version, **row}
            )
            if result.rowcount != 1:
                raise RetryWrite
        self._index.replace(
            resource_type,
            resource_id,
            stamped,
            had_rows=previous is not None and not previous.deleted,
            values=values,
        )
        self._history.append(
            {"res_type": resource_type, "res_id": resource_id, "method": method, **row}
        )
        stored = StoredVersion(
            resource_type, resource_id, version, last_updated, body is None, body, method
        )
        self.written.append((stored, previous))
        # as `current` would read it back from the database (which does not keep the method)
        self._known[key] = StoredVersion(
            resource_type, resource_id, version, last_updated, body is None, body
        )
        return stored

    def add_audit(self, records: Sequence[AuditRecord]) -> None:
        """Records to commit with this transaction's data (or not at all)."""
        self.audit_records.extend(records)

    def reindex(self, resource_type: str, resource_id: str, body: bytes) -> None:
        """Rebuild the index rows of a current version (its plaintext body; `db reindex`)."""
        self._index.replace(resource_type, resource_id, loads(body), had_rows=True)

    async def flush(self, *, with_audit: bool = False) -> None:
        """Send the batched rows: new data keys, current versions, history, index rows, and
        `with_audit` (right before the commit) the audit records, chained. A unique version per
        resource is checked here: a concurrent writer makes an insert fail and the whole
        transaction retry."""
        batch = Batch(inserts=key_inserts(self._sealing) if self._sealing else [])
        batch.insert(resource, list(self._inserts.values()))
        batch.insert(resource_history, self._history)
        self._index.take(batch)
        self._inserts, self._history = {}, []
        if with_audit and self.audit_records:
            records, self.audit_records = self.audit_records, []
            batch.audit = self._audit_plan = await self._audit_sealer.plan(
                records,
                connection=self.connection,
                known=self._sealing.by_owner if isinstance(self._sealing, KeyedTxSealer) else None,
                excluded=self.erased_owners,
            )
        await batch_writes.send(self.connection, batch)

    async def _insert_new(self) -> None:
        """Insert the first versions written so far (a resource created concurrently makes
        the insert fail: the whole transaction retries)."""
        batch = Batch()
        batch.insert(resource, list(self._inserts.values()))
        self._inserts = {}
        await batch_writes.send(self.connection, batch)

    async def serialize_on(self, key: str) -> None:
        await dialects.serialize_on(self.connection, key)

    async def find_ids(
        self, resource_type: ResourceType, criteria: Sequence[tuple[str, str]], limit: int
    ) -> list[ResourceId]:
        await self.flush()  # a search inside the transaction sees what it wrote
        return await find_ids(self.connection, resource_type, criteria, limit, self._prepare)

    async def search_ids(self, query: SearchQuery, limit: int) -> list[ResourceId]:
        await self.flush()  # a search inside the transaction sees what it wrote
        ids = await executor.matching_ids(self.connection, self._prepare(query), limit)
        return [ResourceId(i) for i in ids]

    def _next_timestamp(self) -> int:
        # Strictly increasing within a transaction so versions written together still order.
        self._last_updated = max(now_micros(), self._last_updated + 1)
        return self._last_updated


class RetryWrite(Exception):
    """A concurrent writer changed the row between our read and our write."""
