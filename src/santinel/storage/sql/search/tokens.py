"""Token parameters: `code`, `system|code`, `|code`, `system|`, `:text`, `:of-type`
(R4 `search.html#token`). `:not` is applied by the caller (it negates the whole set)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_

from santinel.errors import InvalidSearch
from santinel.fhir.search.escaping import split_unescaped, unescape
from santinel.fhir.search.normalize import MAX_INDEXED, normalize
from santinel.storage.sql.search.strings import prefix_between
from santinel.storage.sql.tables import search_token


def condition(modifier: str | None, values: tuple[str, ...]) -> Any:
    return or_(*(_one(modifier, v) for v in values))


def _one(modifier: str | None, value: str) -> Any:
    t = search_token.c
    if modifier == "text":
        return prefix_between(t.text, normalize(unescape(value)))
    if modifier == "of-type":
        parts = [unescape(p) for p in split_unescaped(value, "|")]
        if len(parts) != 3 or not all(parts):
            raise InvalidSearch(":of-type takes system|code|value.")
        return and_(t.system == parts[0], t.code == f"{parts[1]}|{parts[2]}"[:MAX_INDEXED])
    return system_code(value)


def system_code(value: str, system_column: Any = None, code_column: Any = None) -> Any:
    """`[system]|[code]` forms, shared by tokens, `:identifier` and composite components. Codes
    are indexed on their first MAX_INDEXED characters, and compared on as many."""
    system_col = search_token.c.system if system_column is None else system_column
    code_col = search_token.c.code if code_column is None else code_column
    parts = split_unescaped(value, "|")
    if len(parts) == 1:
        return code_col == unescape(parts[0])[:MAX_INDEXED]
    system, code = unescape(parts[0]), unescape("|".join(parts[1:]))[:MAX_INDEXED]
    if not system:
        return and_(system_col.is_(None), code_col == code)
    if not code:
        return system_col == system
    return and_(system_col == system, code_col == code)
