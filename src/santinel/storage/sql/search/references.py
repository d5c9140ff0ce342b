"""Reference parameters: `id`, `Type/id`, absolute URLs, `:[type]`, `:identifier`
(R4 `search.html#reference`)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import and_, or_

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
        url_match = t.url == value.split("|", 1)[0]
        if typed:
            return or_(url_match, and_(t.target_type == typed["type"], t.target_id == typed["id"]))
        return url_match
    if typed:
        return and_(t.target_type == typed["type"], t.target_id == typed["id"])
    if type_modifier:
        return and_(t.target_type == type_modifier, t.target_id == value)
    return t.target_id == value
