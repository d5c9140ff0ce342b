"""Run parsed searches: matching ids in order, counts, includes and paging snapshots."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from santinel.fhir.resource import now_micros
from santinel.fhir.search.query import Include, SearchQuery
from santinel.storage.base import Snapshot
from santinel.storage.sql.search.conditions import compile_condition, index_join
from santinel.storage.sql.search.sorting import order_by
from santinel.storage.sql.tables import resource, search_reference, search_snapshot

Ref = tuple[str, str]  # (resource type, id)
SNAPSHOT_TTL_US = 30 * 60 * 1_000_000


def _matches(query: SearchQuery, alias: Any) -> Any:
    """`SELECT alias.res_id` of the live matches of `query`, each once: plain criteria are joined
    index rows (the planner picks the most selective to start from: `conditions.index_join`),
    the others `IN` / `NOT IN` subqueries."""
    source, where, joined = alias, [], False
    for condition in query.conditions:
        join = index_join(condition, alias)
        if join is None:
            where.append(compile_condition(condition, alias))
        else:
            source, joined = source.join(*join), True
    statement = (
        select(alias.c.res_id)
        .select_from(source)
        .where(alias.c.res_type == query.resource_type, alias.c.deleted.is_(False), *where)
    )
    # a resource with several matching rows (two codings, two values) is one match
    return statement.group_by(alias.c.res_type, alias.c.res_id) if joined else statement


async def matching_ids(connection: AsyncConnection, query: SearchQuery, limit: int) -> list[str]:
    r = resource.alias("r")
    statement = (
        _matches(query, r).order_by(*order_by(query.sort, r, query.resource_type)).limit(limit)
    )
    return [row.res_id for row in await connection.execute(statement)]


def matching_ids_subquery(query: SearchQuery) -> Any:
    """`SELECT res_id` of the live matches of `query`, to embed in another statement."""
    return _matches(query, resource.alias())


async def count_matches(connection: AsyncConnection, query: SearchQuery) -> int:
    matches = _matches(query, resource.alias("r")).subquery()
    statement = select(func.count()).select_from(matches)
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
        refs_in(ref.res_type, ref.res_id, sources),
        ref.target_id.is_not(None),
        ref.target_type.is_not(None),
    )
    if include.param is not None:
        statement = statement.where(ref.param == include.param.code)
    if include.target_type is not None:
        statement = statement.where(ref.target_type == include.target_type)
    rows = await connection.execute(statement.limit(limit))
    return distinct((row.target_type, row.target_id) for row in rows)


async def rev_included(
    connection: AsyncConnection, page: Sequence[Ref], include: Include, limit: int
) -> list[Ref]:
    """Resources of the include's source type that refer to `page` (`_revinclude`)."""
    ref = search_reference.c
    if not page:
        return []
    statement = select(ref.res_type, ref.res_id).where(
        refs_in(ref.target_type, ref.target_id, page)
    )
    if include.source_type != "*":
        statement = statement.where(ref.res_type == include.source_type)
    if include.param is not None:
        statement = statement.where(ref.param == include.param.code)
    rows = await connection.execute(statement.limit(limit))
    return distinct((row.res_type, row.res_id) for row in rows)


def distinct(refs: Iterable[Ref]) -> list[Ref]:
    """`refs` without repeats, in order. Not SELECT DISTINCT: to return rows in the order of
    the selected columns, SQLite then prefers walking a whole index sorted that way over seeking
    the page's few rows (the include of one page read every reference of its type). A source
    referring twice takes two rows of the include budget (`limit`): a page may then include
    slightly fewer than the budget, never more."""
    return list(dict.fromkeys(refs))


def refs_in(type_column: Any, id_column: Any, refs: Sequence[Ref]) -> Any:
    """`(type, id) IN refs`, written `type = T AND id IN (…) OR …` one type at a time: SQLite
    seeks an index on (type, id) for that form, but reads the whole table for a row-value IN of
    a VALUES list (the resource table, on every page read: issue 3's scale benchmark)."""
    by_type: dict[str, list[str]] = {}
    for resource_type, resource_id in refs:
        by_type.setdefault(resource_type, []).append(resource_id)
    return or_(*(and_(type_column == t, id_column.in_(ids)) for t, ids in by_type.items()))


async def read_refs(connection: AsyncConnection, refs: Sequence[Ref]) -> list[Any]:
    """Current live rows for (type, id) pairs, in the order given."""
    if not refs:
        return []
    rows = await connection.execute(
        select(resource).where(
            refs_in(resource.c.res_type, resource.c.res_id, refs),
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
