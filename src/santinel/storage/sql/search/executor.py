"""Run parsed searches: matching ids in order, counts, includes and paging snapshots."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from santinel.fhir.resource import now_micros
from santinel.fhir.search.query import Include, SearchQuery
from santinel.storage.base import Snapshot
from santinel.storage.sql.search.conditions import compile_condition
from santinel.storage.sql.search.sorting import order_by
from santinel.storage.sql.tables import resource, search_reference, search_snapshot

Ref = tuple[str, str]  # (resource type, id)
SNAPSHOT_TTL_US = 30 * 60 * 1_000_000


def _filtered(query: SearchQuery, alias: Any) -> Any:
    return [
        alias.c.res_type == query.resource_type,
        alias.c.deleted.is_(False),
        *(compile_condition(c, alias) for c in query.conditions),
    ]


async def matching_ids(connection: AsyncConnection, query: SearchQuery, limit: int) -> list[str]:
    r = resource.alias("r")
    statement = (
        select(r.c.res_id)
        .where(*_filtered(query, r))
        .order_by(*order_by(query.sort, r, query.resource_type))
        .limit(limit)
    )
    return [row.res_id for row in await connection.execute(statement)]


def matching_ids_subquery(query: SearchQuery) -> Any:
    """`SELECT res_id` of the live matches of `query`, to embed in another statement."""
    r = resource.alias()
    return select(r.c.res_id).where(*_filtered(query, r))


async def count_matches(connection: AsyncConnection, query: SearchQuery) -> int:
    r = resource.alias("r")
    statement = select(func.count()).select_from(r).where(*_filtered(query, r))
    return int((await connection.execute(statement)).scalar_one())


async def included(
    connection: AsyncConnection, page: Sequence[Ref], include: Include, limit: int
) -> list[Ref]:
    """Targets referenced by `page` through the include's parameter (`_include`)."""
    ref = search_reference.c
    sources = [(t, i) for t, i in page if include.source_type in ("*", t)]
    if not sources:
        return []
    statement = select(ref.target_type, ref.target_id).where(
        tuple_(ref.res_type, ref.res_id).in_(sources),
        ref.target_id.is_not(None),
        ref.target_type.is_not(None),
    )
    if include.param is not None:
        statement = statement.where(ref.param == include.param.code)
    if include.target_type is not None:
        statement = statement.where(ref.target_type == include.target_type)
    rows = await connection.execute(statement.distinct().limit(limit))
    return [(row.target_type, row.target_id) for row in rows]


async def rev_included(
    connection: AsyncConnection, page: Sequence[Ref], include: Include, limit: int
) -> list[Ref]:
    """Resources of the include's source type that refer to `page` (`_revinclude`)."""
    ref = search_reference.c
    if not page:
        return []
    statement = select(ref.res_type, ref.res_id).where(
        tuple_(ref.target_type, ref.target_id).in_(list(page))
    )
    if include.source_type != "*":
        statement = statement.where(ref.res_type == include.source_type)
    if include.param is not None:
        statement = statement.where(ref.param == include.param.code)
    rows = await connection.execute(statement.distinct().limit(limit))
    return [(row.res_type, row.res_id) for row in rows]


async def read_refs(connection: AsyncConnection, refs: Sequence[Ref]) -> list[Any]:
    """Current live rows for (type, id) pairs, in the order given."""
    if not refs:
        return []
    rows = await connection.execute(
        select(resource).where(
            tuple_(resource.c.res_type, resource.c.res_id).in_(list(refs)),
            resource.c.deleted.is_(False),
        )
    )
    by_ref = {(row.res_type, row.res_id): row for row in rows}
    return [by_ref[r] for r in refs if r in by_ref]


async def save_snapshot(
    connection: AsyncConnection,
    resource_type: str | None,
    query: str,
    ids: list[str],
    complete: bool,
    owner: str,
) -> str:
    now = now_micros()
    await connection.execute(
        delete(search_snapshot).where(search_snapshot.c.created_us < now - SNAPSHOT_TTL_US)
    )
    snapshot_id = uuid.uuid4().hex
    await connection.execute(
        insert(search_snapshot).values(
            id=snapshot_id,
            created_us=now,
            res_type=resource_type,
            query=query,
            total=len(ids),
            complete=complete,
            ids=orjson.dumps(ids),
            owner=owner,
        )
    )
    return snapshot_id


async def load_snapshot(connection: AsyncConnection, snapshot_id: str) -> Snapshot | None:
    row = (
        await connection.execute(
            select(search_snapshot).where(
                search_snapshot.c.id == snapshot_id,
                search_snapshot.c.created_us >= now_micros() - SNAPSHOT_TTL_US,
            )
        )
    ).first()
    if row is None:
        return None
    ids = orjson.loads(row.ids)
    return Snapshot(row.id, row.res_type, row.query, row.total, row.complete, ids, row.owner)
