"""Write a resource's index rows, in the same transaction as the resource itself."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Table, delete, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from santinel.fhir.search.extract import extract
from santinel.fhir.search.normalize import MAX_INDEXED
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
from santinel.storage.sql.search.blind import BlindRows
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

MAX_TEXT = MAX_INDEXED  # the width of the indexed text columns; searches compare as many


class IndexBuffer:
    """Index rows of the resources a transaction writes, sent to the database in one batch per
    table when the transaction flushes (before any search inside it, and before it commits):
    a 100-entry Bundle costs a few statements per index table instead of hundreds."""

    def __init__(self, blind: BlindRows | None = None) -> None:
        self.blind = blind  # identifying values become blind-index rows (None: all in clear)
        self._stale: dict[str, set[str]] = defaultdict(set)
        self._rows: dict[tuple[str, str], dict[Table, list[dict[str, Any]]]] = {}

    def replace(
        self,
        resource_type: str,
        resource_id: str,
        resource: dict[str, Any] | None,
        *,
        had_rows: bool,
        values: list[ExtractedValue] | None = None,
    ) -> None:
        """Plan to drop the previous version's rows (if any) and add those of `resource`
        (whose index values the caller may have extracted already: `values`)."""
        if had_rows:
            self._stale[resource_type].add(resource_id)
        rows: dict[Table, list[dict[str, Any]]] = {}
        if resource:
            found = values if values is not None else extract(resource)
            blind_rows: list[dict[str, Any]] = []
            if self.blind is not None:
                found, blind_rows = self.blind.split(resource_type, found)
            rows = rows_by_table(resource_type, resource_id, found)
            if blind_rows:
                unique = {(r["param"], r["system"], r["code"]): r for r in blind_rows}
                rows.setdefault(search_token, []).extend(
                    {"res_type": resource_type, "res_id": resource_id, **r} for r in unique.values()
                )
        self._rows[(resource_type, resource_id)] = rows

    async def flush(self, connection: AsyncConnection) -> None:
        for resource_type, ids in self._stale.items():
            for chunk in _chunks(sorted(ids)):
                for table in INDEX_TABLES:
                    await connection.execute(
                        delete(table).where(
                            table.c.res_type == resource_type, table.c.res_id.in_(chunk)
                        )
                    )
        merged: dict[Table, list[dict[str, Any]]] = defaultdict(list)
        for tables in self._rows.values():
            for table, rows in tables.items():
                merged[table].extend(rows)
        for table, rows in merged.items():
            await connection.execute(insert(table), rows)
        self._stale.clear()
        self._rows.clear()


def _chunks(ids: list[str], size: int = 500) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


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
