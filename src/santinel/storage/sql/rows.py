"""Rows of the resource tables as `StoredVersion`s, conditional-operation matches and the data-key
rows a transaction inserts: what the repository and its write transactions share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from santinel.fhir.search.query import parse_criteria
from santinel.storage.base import StoredVersion
from santinel.storage.sql.sealing import Prepare, TxSealer
from santinel.storage.sql.search import executor
from santinel.storage.sql.tables import data_key, resource, resource_history
from santinel.types import ResourceId, ResourceType, VersionId


def key_inserts(sealing: TxSealer) -> list[tuple[Table, list[dict[str, Any]]]]:
    """The data keys `sealing` created, to insert with the rows they seal."""
    rows = sealing.take_key_rows()
    return [(data_key, rows)] if rows else []


async def find_ids(
    connection: AsyncConnection,
    resource_type: ResourceType,
    criteria: Sequence[tuple[str, str]],
    limit: int,
    prepare: Prepare,
) -> list[ResourceId]:
    """Matches of conditional-operation criteria: every parameter must be understood."""
    query = parse_criteria(resource_type, criteria)
    return [ResourceId(i) for i in await executor.matching_ids(connection, prepare(query), limit)]


def select_current() -> Select[Any]:
    return select(
        resource.c.res_type,
        resource.c.res_id,
        resource.c.version,
        resource.c.last_updated,
        resource.c.deleted,
        resource.c.body,
        resource.c.key_id,
    )


def select_history() -> Select[Any]:
    return select(resource_history)


def current_version(row: Any) -> StoredVersion:
    return StoredVersion(*_version_fields(row))


def history_version(row: Any) -> StoredVersion:
    return StoredVersion(*_version_fields(row), row.method, row.seq)


def _version_fields(
    row: Any,
) -> tuple[ResourceType, ResourceId, VersionId, int, bool, bytes | None]:
    return (
        ResourceType(row.res_type),
        ResourceId(row.res_id),
        VersionId(row.version),
        row.last_updated,
        bool(row.deleted),
        row.body,
    )
