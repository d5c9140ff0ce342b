"""Write a resource's index rows, in the same transaction as the resource itself."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Table

from santinel.fhir.search.extract import extract
from santinel.fhir.search.normalize import MAX_INDEXED
from santinel.fhir.search.registry import param as search_param
from santinel.fhir.search.values import (
    CompositeValue,
    DateValue,
    ExtractedValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
)
from santinel.storage.sql.batch_writes import Batch
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

T = TypeVar("T")
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

    def take(self, batch: Batch) -> None:
        """Move the planned deletions and rows into `batch` (sent by the transaction)."""
        for resource_type, ids in self._stale.items():
            for chunk in chunks(sorted(ids)):
                for table in INDEX_TABLES:
                    batch.deletions.append((table, resource_type, chunk))
        merged: dict[Table, list[dict[str, Any]]] = defaultdict(list)
        for tables in self._rows.values():
            for table, rows in tables.items():
                merged[table].extend(rows)
        for table, rows in merged.items():
            batch.insert(table, rows)
        self._stale.clear()
        self._rows.clear()


def chunks(ids: list[T], size: int = 500) -> list[list[T]]:
    """`ids` in lists short enough for one `IN (…)` (SQLite binds at most 999 values)."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def rows_by_table(
    resource_type: str, resource_id: str, values: list[ExtractedValue]
) -> dict[Table, list[dict[str, Any]]]:
    grouped: dict[Table, list[dict[str, Any]]] = defaultdict(list)
    seen: set[tuple[Any, ...]] = set()
    for table, row in _rows(resource_type, resource_id, values):
        # every row of a table has the same keys in the same order (one executemany needs it):
        # its values identify it
        key = (table.name, *row.values())
        if key not in seen:
            seen.add(key)
            grouped[table].append(row)
    return grouped


def _rows(
    resource_type: str, resource_id: str, values: list[ExtractedValue]
) -> list[tuple[Table, dict[str, Any]]]:
    found: list[tuple[Table, dict[str, Any]]] = []
    for value in values:
        builder = ROW_BUILDERS.get(type(value))
        if builder is not None:
            table, build = builder
            found.append((table, build(resource_type, resource_id, value)))
        elif isinstance(value, CompositeValue):
            definition = search_param(resource_type, value.param)
            if definition is not None:
                found += [
                    (search_composite, {"res_type": resource_type, "res_id": resource_id, **row})
                    for row in composites.rows(definition, value)
                ]
    return found


def _clip(text: str | None) -> str | None:
    return text[:MAX_TEXT] if text is not None else None


def _string_row(resource_type: str, resource_id: str, value: StringValue) -> dict[str, Any]:
    return {
        "res_type": resource_type,
        "res_id": resource_id,
        "param": value.param,
        "normalized": _clip(value.normalized),
        "exact": value.exact,
    }


def _token_row(resource_type: str, resource_id: str, value: TokenValue) -> dict[str, Any]:
    return {
        "res_type": resource_type,
        "res_id": resource_id,
        "param": value.param,
        "system": value.system,
        "code": _clip(value.code),
        "text": _clip(value.text),
    }


def _date_row(resource_type: str, resource_id: str, value: DateValue) -> dict[str, Any]:
    return {
        "res_type": resource_type,
        "res_id": resource_id,
        "param": value.param,
        "start_us": value.start,
        "end_us": value.end,
    }


def _number_row(resource_type: str, resource_id: str, value: NumberValue) -> dict[str, Any]:
    return {
        "res_type": resource_type,
        "res_id": resource_id,
        "param": value.param,
        "value": value.value,
        "low": value.low,
        "high": value.high,
    }


def _quantity_row(resource_type: str, resource_id: str, value: QuantityValue) -> dict[str, Any]:
    return {
        "res_type": resource_type,
        "res_id": resource_id,
        "param": value.param,
        "value": value.value,
        "low": value.low,
        "high": value.high,
        "system": value.system,
        "code": _clip(value.code),
        "unit": value.unit,
    }


def _reference_row(resource_type: str, resource_id: str, value: ReferenceValue) -> dict[str, Any]:
    return {
        "res_type": resource_type,
        "res_id": resource_id,
        "param": value.param,
        "target_type": value.target_type,
        "target_id": value.target_id,
        "url": value.url,
    }


def _uri_row(resource_type: str, resource_id: str, value: UriValue) -> dict[str, Any]:
    return {
        "res_type": resource_type,
        "res_id": resource_id,
        "param": value.param,
        "value": _clip(value.value),
    }


# by the value's class (a dictionary lookup instead of a chain of isinstance tests per value)
ROW_BUILDERS: dict[type, tuple[Table, Callable[[str, str, Any], dict[str, Any]]]] = {
    StringValue: (search_string, _string_row),
    TokenValue: (search_token, _token_row),
    DateValue: (search_date, _date_row),
    NumberValue: (search_number, _number_row),
    QuantityValue: (search_quantity, _quantity_row),
    ReferenceValue: (search_reference, _reference_row),
    UriValue: (search_uri, _uri_row),
}
