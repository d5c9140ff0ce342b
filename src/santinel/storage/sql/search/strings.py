"""String parameters: starts-with by default, `:exact`, `:contains` (R4 `search.html#string`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_

from santinel.fhir.search.escaping import unescape
from santinel.fhir.search.normalize import normalize
from santinel.storage.sql.tables import search_string

# Above every character: `x >= p AND x < p + TOP` is "starts with p" under binary collation.
TOP = "\U0010ffff"


def condition(modifier: str | None, values: tuple[str, ...]) -> Any:
    return or_(*(_one(modifier, unescape(v)) for v in values))


def _one(modifier: str | None, value: str) -> Any:
    t = search_string.c
    if modifier == "exact":
        return t.exact == value
    text = normalize(value)
    if modifier == "contains":
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return t.normalized.like(f"%{escaped}%", escape="\\")
    return t.normalized.between(text, text + TOP) if text else t.normalized.isnot(None)


def prefix_between(column: Any, prefix: str) -> Any:
    return column.between(prefix, prefix + TOP)
