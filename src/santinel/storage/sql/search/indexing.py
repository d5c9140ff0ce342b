"""Write a resource's index rows, in the same transaction as the resource itself."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Table, delete, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from santinel.fhir.search.extract import extract
from santinel.fhir.search.registry import param as search_param
from santinel.fhir.search.values import (
    CompositeValue,
    DateValue,
    ExtractedValue,
    IndexValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
)
from santinel.storage.sql.search import composites
from santinel.storage.sql.tables import (
    INDEX_TABLES,
    search_composite,
    search_date,
    search_number,
    search_quantity,
    search_reference,
    search_string,
    search_token,
    search_uri,
)

MAX_TEXT = 255


async def replace_index(
    connection: AsyncConnection,
    resource_type: str,
    resource_id: str,
    resource: dict[str, Any] | None,
    *,
    had_rows: bool,
) -> None:
    """Drop the rows of the previous version (if any) and add those of `resource` (if live)."""
    if had_rows:
        for table in INDEX_TABLES:
            await connection.execute(
                delete(table).where(
                    table.c.res_type == resource_type, table.c.res_id == resource_id
                )
            )
    if resource is None:
        return
    for table, rows in rows_by_table(resource_type, resource_id, extract(resource)).items():
        await connection.execute(insert(table), rows)


def rows_by_table(
    resource_type: str, resource_id: str, values: list[ExtractedValue]
) -> dict[Table, list[dict[str, Any]]]:
    grouped: dict[Table, list[dict[str, Any]]] = defaultdict(list)
    seen: set[tuple[Table, tuple[Any, ...]]] = set()
    for table, row in _rows(resource_type, values):
        key = (table, tuple(sorted(row.items())))
        if key in seen:
            continue
        seen.add(key)
        grouped[table].append({"res_type": resource_type, "res_id": resource_id, **row})
    return grouped


def _rows(resource_type: str, values: list[ExtractedValue]) -> list[tuple[Table, dict[str, Any]]]:
    found: list[tuple[Table, dict[str, Any]]] = []
    for value in values:
        if isinstance(value, CompositeValue):
            definition = search_param(resource_type, value.param)
            if definition is not None:
                found += [(search_composite, row) for row in composites.rows(definition, value)]
            continue
        converted = _row(value)
        if converted is not None:
            found.append(converted)
    return found


def _clip(text: str | None) -> str | None:
    return text[:MAX_TEXT] if text is not None else None


def _row(value: IndexValue) -> tuple[Table, dict[str, Any]] | None:
    match value:
        case StringValue():
            return search_string, {
                "param": value.param,
                "normalized": _clip(value.normalized),
                "exact": value.exact,
            }
        case TokenValue():
            return search_token, {
                "param": value.param,
                "system": value.system,
                "code": _clip(value.code),
                "text": _clip(value.text),
            }
        case DateValue():
            return search_date, {"param": value.param, "start_us": value.start, "end_us": value.end}
        case NumberValue():
            return search_number, {
                "param": value.param,
                "value": value.value,
                "low": value.low,
                "high": value.high,
            }
        case QuantityValue():
            return search_quantity, {
                "param": value.param,
                "value": value.value,
                "low": value.low,
                "high": value.high,
                "system": value.system,
                "code": _clip(value.code),
                "unit": value.unit,
            }
        case ReferenceValue():
            return search_reference, {
                "param": value.param,
                "target_type": value.target_type,
                "target_id": value.target_id,
                "url": value.url,
            }
        case UriValue():
            return search_uri, {"param": value.param, "value": _clip(value.value)}
    return None
