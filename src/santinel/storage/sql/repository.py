"""The SQL implementation of `FhirRepository`, shared by SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import and_, exists, false, func, or_, select, text, tuple_
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from santinel.errors import Conflict
from santinel.fhir.search.query import Include, SearchQuery
from santinel.storage.base import (
    AuditQuery,
    HistoryPage,
    HistoryQuery,
    Snapshot,
    StoredVersion,
    TypeFilter,
)
from santinel.storage.sql import batch_writes, dialects, migrations
from santinel.storage.sql.audit_sealing import KeyedAuditSealer
from santinel.storage.sql.audit_store import SqlAuditStore
from santinel.storage.sql.batch_writes import Batch
from santinel.storage.sql.point_reads import SqlitePointReader, Unavailable, point_reader
from santinel.storage.sql.rows import (
    current_version,
    find_ids,
    history_version,
    key_inserts,
    select_current,
    select_history,
)
from santinel.storage.sql.sealing import (
    BodyRef,
    KeyedSealer,
    NoSealer,
    Prepare,
    Sealer,
    open_snapshot_query,
    opened,
    seal_snapshot_query,
    search_preparer,
)
from santinel.storage.sql.search import executor
from santinel.storage.sql.tables import data_key, resource, resource_history
from santinel.storage.sql.write_transaction import RetryWrite, SqlWriteTransaction
from santinel.types import ResourceId, ResourceType, VersionId

T = TypeVar("T")
MAX_WRITE_ATTEMPTS = 8


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
        query = select_current().where(
            resource.c.res_type == resource_type, resource.c.res_id == resource_id
        )
        async with self._one_statement() as connection:
            row = (await connection.execute(query)).first()
        return await self._open(current_version(row), row.key_id) if row else None

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
        query = select_history().where(
            resource_history.c.res_type == resource_type,
            resource_history.c.res_id == resource_id,
            resource_history.c.version == version,
        )
        async with self._one_statement() as connection:
            row = (await connection.execute(query)).first()
        return await self._open(history_version(row), row.key_id) if row else None

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
        query = select_current().where(
            resource.c.res_type == resource_type, resource.c.res_id.in_(list(resource_ids))
        )
        async with self.reader.connect() as connection:
            rows = (await connection.execute(query)).all()
        by_id = {row.res_id: await self._open(current_version(row), row.key_id) for row in rows}
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
            except (RetryWrite, IntegrityError):
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
            return await find_ids(connection, resource_type, criteria, limit, self._prepare)

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
        return [await self._open(current_version(row), row.key_id) for row in rows]

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
            await batch_writes.send(connection, Batch(inserts=key_inserts(sealing)))
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
        await self.sealer.refresh()  # a type filter may search blind-indexed values
        where = _history_filters(query, self._prepare)
        page = select_history().where(*where)
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
            versions = [await self._open(history_version(row), row.key_id) for row in rows]
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
        await self.audit.close()
        await self.sealer.close()
        if self._point_reads is not None:
            self._point_reads.close()
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()


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
