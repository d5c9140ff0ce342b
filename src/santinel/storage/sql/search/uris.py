"""URI parameters: exact, `:below` (prefix), `:above` (R4 `search.html#uri`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_

from santinel.fhir.search.escaping import unescape
from santinel.fhir.search.normalize import MAX_INDEXED
from santinel.storage.sql.search.strings import prefix_between
from santinel.storage.sql.tables import search_uri


def condition(modifier: str | None, values: tuple[str, ...]) -> Any:
    return or_(*(_one(modifier, unescape(v)) for v in values))


def _one(modifier: str | None, value: str) -> Any:
    """URIs are indexed on their first MAX_INDEXED characters, and compared on as many."""
    t = search_uri.c
    if modifier == "below":
        return prefix_between(t.value, value[:MAX_INDEXED])
    if modifier == "above":
        return t.value.in_([a[:MAX_INDEXED] for a in _ancestors(value)])
    return t.value == value[:MAX_INDEXED]


def _ancestors(value: str) -> list[str]:
    """The URI and every parent path of it: `:above` matches any of them."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        return [value]
    segments = rest.split("/")
    return [f"{scheme}://{'/'.join(segments[:n])}" for n in range(1, len(segments) + 1)]
