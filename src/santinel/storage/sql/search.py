"""Search criteria compiled to SQL. The core supports `_id` and `_lastUpdated`; the search issue
replaces this with the registry of official SearchParameters and typed index tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from santinel.errors import InvalidSearch
from santinel.fhir.dates import parse_date_criterion
from santinel.storage.sql.tables import resource
from santinel.types import ResourceType


def compile_criteria(resource_type: ResourceType, criteria: Sequence[tuple[str, str]]) -> list[Any]:
    """SQL conditions for AND-ed `(name, value)` criteria; unknown parameters are refused, never
    ignored, because conditional writes must not act on resources that do not really match."""
    return [_compile_one(resource_type, name, value) for name, value in criteria]


def _compile_one(resource_type: ResourceType, name: str, value: str) -> Any:
    if name == "_id":
        return resource.c.res_id.in_([v for v in value.split(",") if v])
    if name == "_id:after":  # keyset paging cursor
        return resource.c.res_id > value
    if name == "_lastUpdated":
        return parse_date_criterion(value).condition(resource.c.last_updated)
    raise InvalidSearch(
        f"The search parameter '{name}' is not supported on {resource_type}.",
        issue_code="not-supported",
    )
