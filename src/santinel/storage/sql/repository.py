"""The SQL implementation of `FhirRepository`, shared by SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    Select,
    Table,
    and_,
    bindparam,
    exists,
    false,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from santinel.audit.records import AuditRecord
from santinel.errors import Conflict, InvalidSearch
from santinel.fhir.json import dumps, loads
from santinel.fhir.resource import now_micros, stamp
from santinel.fhir.search.extract import extract
from santinel.fhir.search.query import Include, SearchQuery, parse_query
from santinel.storage.base import (
    AuditQuery,
    HistoryPage,
    HistoryQuery,
    Method,
    Snapshot,
    StoredVersion,
    TypeFilter,
)
from santinel.storage.sql import batch_writes, dialects, migrations
from santinel.storage.sql.audit_sealing import (
    AuditSealer,
    KeyedAuditSealer,
    NoAuditSealer,
    SealingPlan,
)
from santinel.storage.sql.audit_store import SqlAuditStore
from santinel.storage.sql.batch_writes import Batch
from santinel.storage.sql.point_reads import SqlitePointReader, Unavailable, point_reader
from santinel.storage.sql.sealing import (
    BodyRef,
    KeyedSealer,
    KeyedTxSealer,
    NoSealer,
    Prepare,
    Sealer,
    TxSealer,
    compartment_patients,
    open_snapshot_query,
    opened,
    owner_for,
    seal_snapshot_query,
    search_preparer,
)
from santinel.storage.sql.search import executor
from santinel.storage.sql.search.blind import BlindRows
from santinel.storage.sql.search.indexing import IndexBuffer, chunks
from santinel.storage.sql.tables import data_key, resource, resource_history
from santinel.types import ResourceId, ResourceType, VersionId

T = TypeVar("T")
MAX_WRITE_ATTEMPTS = 8
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
        query = _select_current().where(
            resource.c.res_type == resource_type, resource.c.res_id == resource_id
        )
        if self._lock_rows:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        if row is None:
            return None
        return await opened(self.sealing().open, _current_version(row), row.key_id)

    async def preload(self, refs: Iterable[tuple[ResourceType, ResourceId]]) -> None:
        """Read (and lock, where rows lock) the current versions of these resources in one
        statement per 500, instead of one round trip each in `current`; opened when asked for
        (an integrity failure then names the entry that asked)."""
        wanted = sorted({key for key in refs if key not in self._known} - self._preloaded.keys())
        for chunk in chunks(wanted):
            query = _select_current().where(
                executor.refs_in(resource.c.res_type, resource.c.res_id, chunk)
            )
            if self._lock_rows:
                query = query.with_for_update()
            rows = {(row.res_type, row.res_id): row for row in await self.connection.execute(query)}
            for key in chunk:
                row = rows.get(key)
                self._preloaded[key] = None if row is None else (_current_version(row), row.key_id)

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
                raise _RetryWrite
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
        batch = Batch(inserts=_key_inserts(self._sealing) if self._sealing else [])
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
        return await _find_ids(self.connection, resource_type, criteria, limit, self._prepare)

    async def search_ids(self, query: SearchQuery, limit: int) -> list[ResourceId]:
        await self.flush()  # a search inside the transaction sees what it wrote
        ids = await executor.matching_ids(self.connection, self._prepare(query), limit)
        return [ResourceId(i) for i in ids]

    def _next_timestamp(self) -> int:
        # Strictly increasing within a transaction so versions written together still order.
        self._last_updated = max(now_micros(), self._last_updated + 1)
        return self._last_updated


class _RetryWrite(Exception):
    """A concurrent writer changed the row between our read and our write."""


class SqlRepository:
    def __init__(
        self,
        url: str,
        *,
        query_timeout_seconds: float = 10.0,
        sealer: Sealer | None = None,
        pool_size: int = 20,
    ) -> None:
        self.url = url
        self.query_timeout = query_timeout_seconds
        # Bodies are sealed and opened here, at the SQL boundary (`sealing`); without a sealer
        # (the data keys are opened after the schema: `use_sealer`) no body is stored or served.
        self.sealer: Sealer = sealer or NoSealer()
        self._prepare = search_preparer(self.sealer)
        self.reader, self.writer = dialects.create_engines(url, pool_size)
        self._point_reads = point_reader(url, self.reader)
        # One-statement reads need no transaction: on PostgreSQL, autocommit saves the BEGIN and
        # ROLLBACK round trips (two of the three a read by id otherwise costs).
        self._autocommit_reads = not dialects.is_sqlite(url)
        # Called in every write transaction that wrote versions, right before its commit: the
        # audit service adds the records of those changes (`tx.add_audit`), so they commit with
        # the data or not at all.
        self.before_commit: Callable[[SqlWriteTransaction], Awaitable[None]] | None = None
        self.audit = SqlAuditStore(self.reader, self.writer)  # sealing: `use_sealer`

    async def audit_events(self, query: AuditQuery) -> list[tuple[int, bytes]]:
        return await self.audit.search(query)

    # -- instance level -------------------------------------------------------------------
    async def read(
        self, resource_type: ResourceType, resource_id: ResourceId
    ) -> StoredVersion | None:
        if self._point_reads is not None:
            with contextlib.suppress(Unavailable):
                found = await self._point_reads.current(resource_type, resource_id)
                return await self._open(*found) if found else None
        query = _select_current().where(
            resource.c.res_type == resource_type, resource.c.res_id == resource_id
        )
        async with self._one_statement() as connection:
            row = (await connection.execute(query)).first()
        return await self._open(_current_version(row), row.key_id) if row else None

    def use_sealer(self, sealer: Sealer) -> None:
        """Seal and open bodies with `sealer` from now on (once the data keys are open)."""
        self.sealer = sealer
        self._prepare = search_preparer(sealer)
        if isinstance(sealer, KeyedSealer):
            # audit bodies with the same keys (another sealer's audit counterpart, the bench's
            # null cipher, is set on `audit` by whoever built it)
            self.audit.sealer = KeyedAuditSealer(sealer)
            if isinstance(self._point_reads, SqlitePointReader):
                sealer.keys.inline = self._point_reads.fetch_one

    async def _open(self, stored: StoredVersion, key_id: str | None) -> StoredVersion:
        return await opened(self.sealer.open, stored, key_id)

    async def vread(
        self, resource_type: ResourceType, resource_id: ResourceId, version: VersionId
    ) -> StoredVersion | None:
        if self._point_reads is not None:
            with contextlib.suppress(Unavailable):
                found = await self._point_reads.version(resource_type, resource_id, version)
                return await self._open(*found) if found else None
        query = _select_history().where(
            resource_history.c.res_type == resource_type,
            resource_history.c.res_id == resource_id,
            resource_history.c.version == version,
        )
        async with self._one_statement() as connection:
            row = (await connection.execute(query)).first()
        return await self._open(_history_version(row), row.key_id) if row else None

    @contextlib.asynccontextmanager
    async def _one_statement(self) -> AsyncIterator[AsyncConnection]:
        """A reader connection for a single SELECT (autocommit where it saves round trips)."""
        async with self.reader.connect() as connection:
            if self._autocommit_reads:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection

    async def read_many(
        self, resource_type: ResourceType, resource_ids: Sequence[ResourceId]
    ) -> list[StoredVersion]:
        if not resource_ids:
            return []
        query = _select_current().where(
            resource.c.res_type == resource_type, resource.c.res_id.in_(list(resource_ids))
        )
        async with self.reader.connect() as connection:
            rows = (await connection.execute(query)).all()
        by_id = {row.res_id: await self._open(_current_version(row), row.key_id) for row in rows}
        return [by_id[i] for i in resource_ids if i in by_id]

    # -- writes ---------------------------------------------------------------------------
    async def run_write(self, work: Callable[[SqlWriteTransaction], Awaitable[T]]) -> T:
        await self.sealer.refresh()  # index rows under the blind-index key in use now
        for attempt in range(MAX_WRITE_ATTEMPTS):
            try:
                async with self.writer.begin() as connection:
                    tx = SqlWriteTransaction(connection, self.sealer, self.audit.sealer)
                    result = await work(tx)
                    if self.before_commit is not None and tx.written:
                        await self.before_commit(tx)  # the audit records of what `work` wrote
                    await tx.flush(with_audit=True)
                tx.committed()
                return result
            except (_RetryWrite, IntegrityError):
                pass
            except DBAPIError as exc:
                if not dialects.is_write_conflict(exc):
                    raise
            await asyncio.sleep(0.002 * (attempt + 1))
        raise Conflict("The resource is being changed by other requests; try again.")

    # -- type level -----------------------------------------------------------------------
    async def find_ids(
        self, resource_type: ResourceType, criteria: Sequence[tuple[str, str]], limit: int
    ) -> list[ResourceId]:
        await self.sealer.refresh()
        async with self.reader.connect() as connection:
            return await _find_ids(connection, resource_type, criteria, limit, self._prepare)

    async def search_ids(self, query: SearchQuery, limit: int) -> list[ResourceId]:
        await self.sealer.refresh()  # the blind-index keys of a rotation by another process
        async with (
            self.reader.connect() as connection,
            dialects.time_budget(connection, self.query_timeout),
        ):
            ids = await executor.matching_ids(connection, self._prepare(query), limit)
        return [ResourceId(i) for i in ids]

    async def count(self, query: SearchQuery) -> int:
        await self.sealer.refresh()
        async with (
            self.reader.connect() as connection,
            dialects.time_budget(connection, self.query_timeout),
        ):
            return await executor.count_matches(connection, self._prepare(query))

    async def read_refs(self, refs: Sequence[tuple[str, str]]) -> list[StoredVersion]:
        async with self.reader.connect() as connection:
            rows = await executor.read_refs(connection, refs)
        return [await self._open(_current_version(row), row.key_id) for row in rows]

    async def include_refs(
        self, page: Sequence[tuple[str, str]], include: Include, reverse: bool, limit: int
    ) -> list[tuple[str, str]]:
        run = executor.rev_included if reverse else executor.included
        async with self.reader.connect() as connection:
            return await run(connection, page, include, limit)

    async def save_snapshot(
        self, resource_type: str | None, query: str, ids: list[str], complete: bool, owner: str
    ) -> str:
        async with self.writer.begin() as connection:
            # the query may name a patient (`family=…`): sealed like a body
            sealing = self.sealer.begin(connection, dialects.lock_clause(connection.dialect.name))
            stored = await seal_snapshot_query(sealing, resource_type, query)
            await batch_writes.send(connection, Batch(inserts=_key_inserts(sealing)))
            snapshot_id = await executor.save_snapshot(
                connection, resource_type, stored, ids, complete, owner
            )
        sealing.committed()
        return snapshot_id

    async def load_snapshot(self, snapshot_id: str) -> Snapshot | None:
        async with self.reader.connect() as connection:
            snapshot = await executor.load_snapshot(connection, snapshot_id)
        if snapshot is None:
            return None
        query = await open_snapshot_query(self.sealer, snapshot.resource_type, snapshot.query)
        return dataclasses.replace(snapshot, query=query)

    # -- history --------------------------------------------------------------------------
    async def history(self, query: HistoryQuery) -> HistoryPage:
        h = resource_history.c
        where = _history_filters(query, self._prepare)
        page = _select_history().where(*where)
        if query.after_sequence is not None:
            page = page.where(h.seq > query.after_sequence).order_by(h.seq.asc())
        else:
            if query.before_sequence is not None:
                page = page.where(h.seq < query.before_sequence)
            page = page.order_by(h.seq.desc())
        page = page.limit(query.count + 1)
        async with self.reader.connect() as connection:
            rows = list((await connection.execute(page)).all())
            more = len(rows) > query.count
            rows = rows[: query.count]
            if query.after_sequence is not None:
                rows.reverse()
            versions = [await self._open(_history_version(row), row.key_id) for row in rows]
            total = None
            if query.resource_id is not None:
                count = select(func.count()).select_from(resource_history).where(*where)
                total = (await connection.execute(count)).scalar_one()
        going_back = query.after_sequence is None
        has_older = more if going_back else True
        has_newer = (query.before_sequence is not None) if going_back else more
        return HistoryPage(versions, has_older, has_newer, total)

    async def live_count(self) -> int:
        query = select(func.count()).select_from(resource).where(resource.c.deleted.is_(False))
        async with self.reader.connect() as connection:
            return int((await connection.execute(query)).scalar_one())

    async def reindex_batch(
        self, after: tuple[str, str] | None, size: int, *, since_us: int | None = None
    ) -> tuple[str, str] | None:
        """Rebuild the index rows of the next `size` live resources after `after` (in (type, id)
        order; `since_us`: only those last updated since) in one transaction, each under a row
        lock where the database has them (a concurrent write of one waits, or is waited for);
        the last (type, id) done, or None when there are no more."""
        query = (
            select(
                resource.c.res_type,
                resource.c.res_id,
                resource.c.version,
                resource.c.body,
                resource.c.key_id,
            )
            .where(resource.c.deleted.is_(False))
            .order_by(resource.c.res_type, resource.c.res_id)
            .limit(size)
        )
        if after is not None:
            query = query.where(tuple_(resource.c.res_type, resource.c.res_id) > after)
        if since_us is not None:
            query = query.where(resource.c.last_updated >= since_us)

        async def work(tx: SqlWriteTransaction) -> tuple[str, str] | None:
            locked = query.with_for_update() if tx.locks_rows() else query
            rows = list(await tx.connection.execute(locked))
            for row in rows:
                ref = BodyRef(row.res_type, row.res_id, row.version)
                body = await tx.sealing().open(ref, row.body, row.key_id)
                if body is not None:
                    tx.reindex(row.res_type, row.res_id, body)
            return (rows[-1].res_type, rows[-1].res_id) if rows else None

        return await self.run_write(work)

    # -- operations -----------------------------------------------------------------------
    async def refresh_statistics(self) -> None:
        """Let the query planner see the data just loaded. PostgreSQL plans from statistics
        that autovacuum refreshes only about a minute after tables grow: until then it takes
        every table for one row and nests loops (seconds for a chained search). SQLite plans
        without them."""
        if dialects.is_sqlite(self.url):
            return
        async with self.writer.connect() as connection:
            await connection.execute(text("ANALYZE"))
            await connection.commit()

    async def is_empty(self) -> bool:
        query = select(resource.c.res_id).limit(1)
        async with self.reader.connect() as connection:
            return (await connection.execute(query)).first() is None

    async def ready(self) -> tuple[bool, str]:
        try:
            async with self.reader.connect() as connection:
                current = await connection.run_sync(migrations.current_revision)
        except (DBAPIError, OSError):
            return False, "database unreachable"
        if current != migrations.head_revision():
            return False, "database schema is not at the current migration"
        return True, "ok"

    async def close(self) -> None:
        await self.sealer.close()
        if self._point_reads is not None:
            self._point_reads.close()
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()


def _key_inserts(sealing: TxSealer) -> list[tuple[Table, list[dict[str, Any]]]]:
    """The data keys `sealing` created, to insert with the rows they seal."""
    rows = sealing.take_key_rows()
    return [(data_key, rows)] if rows else []


def _history_filters(query: HistoryQuery, prepare: Prepare) -> list[Any]:
    h = resource_history.c
    # versions sealed with an erased key are gone for good (crypto-shredding)
    erased = select(data_key.c.key_id).where(data_key.c.erased_us.is_not(None))
    where: list[Any] = [or_(h.key_id.is_(None), h.key_id.not_in(erased))]
    if query.resource_type is not None:
        where.append(h.res_type == query.resource_type)
    if query.resource_id is not None:
        where.append(h.res_id == query.resource_id)
    if query.since is not None:
        where.append(h.last_updated >= query.since)
    if query.at_end is not None:
        where.append(h.last_updated <= query.at_end)
    if query.visible is not None:
        where.append(_visible_versions(query.visible, prepare))
    if query.at_start is not None:
        # Current at some point of the period: not replaced by a later version before it began.
        later = resource_history.alias("later")
        where.append(
            ~exists().where(
                and_(
                    later.c.res_type == h.res_type,
                    later.c.res_id == h.res_id,
                    later.c.version > h.version,
                    later.c.last_updated <= query.at_start,
                )
            )
        )
    return where


def _visible_versions(filters: Sequence[TypeFilter], prepare: Prepare) -> Any:
    """Versions of the listed types only, and for a type with `members`, only versions of the
    resources that match it now (an access decision pushed into the history query)."""
    h = resource_history.c
    whole = [f.resource_type for f in filters if f.members is None]
    alternatives: list[Any] = [h.res_type.in_(whole)] if whole else []
    for f in filters:
        if f.members is not None:
            members = executor.matching_ids_subquery(prepare(f.members))
            alternatives.append(and_(h.res_type == f.resource_type, h.res_id.in_(members)))
    return or_(*alternatives) if alternatives else false()


async def _find_ids(
    connection: AsyncConnection,
    resource_type: ResourceType,
    criteria: Sequence[tuple[str, str]],
    limit: int,
    prepare: Prepare,
) -> list[ResourceId]:
    """Matches of conditional-operation criteria: every parameter must be understood."""
    query = parse_query(resource_type, list(criteria))
    if query.ignored:
        raise InvalidSearch(
            f"Unsupported search parameter(s) in the condition: {', '.join(query.ignored)}.",
            issue_code="not-supported",
        )
    return [ResourceId(i) for i in await executor.matching_ids(connection, prepare(query), limit)]


def _select_current() -> Select[Any]:
    return select(
        resource.c.res_type,
        resource.c.res_id,
        resource.c.version,
        resource.c.last_updated,
        resource.c.deleted,
        resource.c.body,
        resource.c.key_id,
    )


def _select_history() -> Select[Any]:
    return select(resource_history)


def _current_version(row: Any) -> StoredVersion:
    return StoredVersion(
        ResourceType(row.res_type),
        ResourceId(row.res_id),
        VersionId(row.version),
        row.last_updated,
        bool(row.deleted),
        row.body,
    )


def _history_version(row: Any) -> StoredVersion:
    return StoredVersion(
        ResourceType(row.res_type),
        ResourceId(row.res_id),
        VersionId(row.version),
        row.last_updated,
        bool(row.deleted),
        row.body,
        row.method,
        row.seq,
    )
