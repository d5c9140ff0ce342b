"""Reference parameters: `id`, `Type/id`, absolute URLs, canonicals with or without `|version`,
`:[type]`, `:identifier` (R4 `search.html#reference`)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import and_, func, or_

from santinel.fhir.search.escaping import unescape
from santinel.fhir.search.registry import SearchParam
from santinel.storage.sql.tables import search_reference

TYPED = re.compile(
    r"(?:.*/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(/_history/[^/]+)?"
)


def condition(param: SearchParam, type_modifier: str | None, values: tuple[str, ...]) -> Any:
    return or_(*(_one(param, type_modifier, unescape(v)) for v in values))


def _one(param: SearchParam, type_modifier: str | None, value: str) -> Any:
    t = search_reference.c
    typed = TYPED.fullmatch(value)
    if "://" in value or value.startswith("urn:"):
        url_match = _url(value)
        if typed:
            return or_(url_match, and_(t.target_type == typed["type"], t.target_id == typed["id"]))
        return url_match
    if "|" in value:  # a relative canonical with its version, `Library/x|1.0`
        return t.url == value
    if typed:
        return and_(t.target_type == typed["type"], t.target_id == typed["id"])
    if type_modifier:
        return and_(t.target_type == type_modifier, t.target_id == value)
    return t.target_id == value


def _url(value: str) -> Any:
    """A canonical `url|version` matches that version only; `url` matches the url as written
    and every version of it (`url|1.0`, `url|2.0`)."""
    t = search_reference.c
    if "|" in value:
        return t.url == value
    versioned = value + "|"
    return or_(t.url == value, func.substr(t.url, 1, len(versioned)) == versioned)
