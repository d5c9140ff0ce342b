"""The SQL implementation of `FhirRepository`, shared by SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, and_, exists, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from santinel.errors import Conflict
from santinel.fhir.json import dumps
from santinel.fhir.resource import now_micros, stamp
from santinel.storage.base import (
    HistoryPage,
    HistoryQuery,
    Method,
    StoredVersion,
)
from santinel.storage.sql import dialects, migrations
from santinel.storage.sql.search import compile_criteria
from santinel.storage.sql.tables import resource, resource_history
from santinel.types import ResourceId, ResourceType, VersionId

T = TypeVar("T")
MAX_WRITE_ATTEMPTS = 8


class SqlWriteTransaction:
    """One database transaction of writes, handed to the caller's unit of work."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self._lock_rows = dialects.lock_clause(connection.dialect.name)
        self._last_updated = 0

    async def current(
        self, resource_type: ResourceType, resource_id: ResourceId
    ) -> StoredVersion | None:
        query = _select_current().where(
            resource.c.res_type == resource_type, resource.c.res_id == resource_id
        )
        if self._lock_rows:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        return _current_version(row) if row else None

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
        body = None
        if resource_json is not None:
            body = dumps(stamp(resource_json, resource_id, version, last_updated))
        row = {
            "version": version,
            "last_updated": last_updated,
            "deleted": resource_json is None,
            "body": body,
        }
        if previous is None:
            await self.connection.execute(
                insert(resource).values(res_type=resource_type, res_id=resource_id, **row)
            )
        else:
            result = await self.connection.execute(
                update(resource)
                .where(
                    resource.c.res_type == resource_type,
                    resource.c.res_id == resource_id,
                    resource.c.version == previous.version,
                )
                .values(**row)
            )
            if result.rowcount != 1:
                raise _RetryWrite
        inserted = await self.connection.execute(
            insert(resource_history)
            .values(res_type=resource_type, res_id=resource_id, method=method, **row)
            .returning(resource_history.c.seq)
        )
        return StoredVersion(
            resource_type,
            resource_id,
            version,
            last_updated,
            body is None,
            body,
            method,
            inserted.scalar_one(),
        )

    async def serialize_on(self, key: str) -> None:
        await dialects.serialize_on(self.connection, key)

    async def find_ids(
        self, resource_type: ResourceType, criteria: Sequence[tuple[str, str]], limit: int
    ) -> list[ResourceId]:
        return await _find_ids(self.connection, resource_type, criteria, limit)

    def _next_timestamp(self) -> int:
        # Strictly increasing within a transaction so versions written together still order.
        self._last_updated = max(now_micros(), self._last_updated + 1)
        return self._last_updated


class _RetryWrite(Exception):
    """A concurrent writer changed the row between our read and our write."""


class SqlRepository:
    def __init__(self, url: str) -> None:
        self.url = url
        self.reader, self.writer = dialects.create_engines(url)

    # -- instance level -------------------------------------------------------------------
    async def read(
        self, resource_type: ResourceType, resource_id: ResourceId
    ) -> StoredVersion | None:
        query = _select_current().where(
            resource.c.res_type == resource_type, resource.c.res_id == resource_id
        )
        async with self.reader.connect() as connection:
            row = (await connection.execute(query)).first()
        return _current_version(row) if row else None

    async def vread(
        self, resource_type: ResourceType, resource_id: ResourceId, version: VersionId
    ) -> StoredVersion | None:
        query = _select_history().where(
            resource_history.c.res_type == resource_type,
            resource_history.c.res_id == resource_id,
            resource_history.c.version == version,
        )
        async with self.reader.connect() as connection:
            row = (await connection.execute(query)).first()
        return _history_version(row) if row else None

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
        by_id = {row.res_id: _current_version(row) for row in rows}
        return [by_id[i] for i in resource_ids if i in by_id]

    # -- writes ---------------------------------------------------------------------------
    async def run_write(self, work: Callable[[SqlWriteTransaction], Awaitable[T]]) -> T:
        for attempt in range(MAX_WRITE_ATTEMPTS):
            try:
                async with self.writer.begin() as connection:
                    return await work(SqlWriteTransaction(connection))
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
        async with self.reader.connect() as connection:
            return await _find_ids(connection, resource_type, criteria, limit)

    # -- history --------------------------------------------------------------------------
    async def history(self, query: HistoryQuery) -> HistoryPage:
        h = resource_history.c
        where = _history_filters(query)
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
            versions = [_history_version(row) for row in rows]
            total = None
            if query.resource_id is not None:
                count = select(func.count()).select_from(resource_history).where(*where)
                total = (await connection.execute(count)).scalar_one()
        going_back = query.after_sequence is None
        has_older = more if going_back else True
        has_newer = (query.before_sequence is not None) if going_back else more
        return HistoryPage(versions, has_older, has_newer, total)

    # -- operations -----------------------------------------------------------------------
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
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()


def _history_filters(query: HistoryQuery) -> list[Any]:
    h = resource_history.c
    where: list[Any] = []
    if query.resource_type is not None:
        where.append(h.res_type == query.resource_type)
    if query.resource_id is not None:
        where.append(h.res_id == query.resource_id)
    if query.since is not None:
        where.append(h.last_updated >= query.since)
    if query.at_end is not None:
        where.append(h.last_updated <= query.at_end)
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


async def _find_ids(
    connection: AsyncConnection,
    resource_type: ResourceType,
    criteria: Sequence[tuple[str, str]],
    limit: int,
) -> list[ResourceId]:
    query = (
        select(resource.c.res_id)
        .where(resource.c.res_type == resource_type, resource.c.deleted.is_(False))
        .where(*compile_criteria(resource_type, criteria))
        .order_by(resource.c.res_id)
        .limit(limit)
    )
    return [ResourceId(row.res_id) for row in await connection.execute(query)]


def _select_current() -> Select[Any]:
    return select(
        resource.c.res_type,
        resource.c.res_id,
        resource.c.version,
        resource.c.last_updated,
        resource.c.deleted,
        resource.c.body,
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
