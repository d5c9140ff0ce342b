"""Composite parameters: `a$b` matches when both parts hold in ONE element
(R4 `search.html#composite`), e.g. `component-code-value-quantity=http://loinc.org|8480-6$gt100`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from sqlalchemy import and_, or_

from santinel.errors import InvalidSearch
from santinel.fhir.dates import parse_period
from santinel.fhir.search.escaping import split_unescaped, unescape
from santinel.fhir.search.normalize import MAX_INDEXED, normalize
from santinel.fhir.search.prefixes import parse_number, split_prefix
from santinel.fhir.search.registry import SearchParam
from santinel.fhir.search.values import (
    CompositeValue,
    DateValue,
    IndexValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
)
from santinel.storage.sql.search.dates import range_condition
from santinel.storage.sql.search.numbers import compare
from santinel.storage.sql.search.strings import prefix_between
from santinel.storage.sql.search.tokens import system_code
from santinel.storage.sql.tables import MAX_COMPONENTS, search_composite

MAX_ROWS_PER_ELEMENT = 64  # bound the cartesian product of one element's component values
# Every row carries every component column: one multi-row INSERT needs the same keys in all rows
# (composites of different shapes, e.g. token$token and token$quantity, share the table).
EMPTY_ROW: dict[str, Any] = {
    c.name: None for c in search_composite.columns if c.name[:1] == "c" and c.name[1:2].isdigit()
}


def rows(param: SearchParam, value: CompositeValue) -> Iterator[dict[str, Any]]:
    """Index rows of one composite element: one per combination of its component values."""
    codes = [c.code for c in param.components][:MAX_COMPONENTS]
    by_component = [[v for v in value.components if v.param == code] for code in codes]
    if len(codes) != len(param.components) or not all(by_component):
        return
    for combination in itertools.islice(itertools.product(*by_component), MAX_ROWS_PER_ELEMENT):
        row: dict[str, Any] = {"param": value.param, **EMPTY_ROW}
        for n, component in enumerate(combination, start=1):
            row.update(_columns(n, component))
        yield row


def _columns(n: int, value: IndexValue) -> dict[str, Any]:
    match value:
        case TokenValue():
            return {
                f"c{n}_system": value.system,
                f"c{n}_code": _clip(value.code),
                f"c{n}_text": _clip(value.text),
            }
        case QuantityValue():  # the unit in `text`: `||unit` matches code or unit, as elsewhere
            return {
                f"c{n}_system": value.system,
                f"c{n}_code": _clip(value.code),
                f"c{n}_value": value.value,
                f"c{n}_low": value.low,
                f"c{n}_high": value.high,
                f"c{n}_text": _clip(value.unit),
            }
        case NumberValue():
            return {f"c{n}_value": value.value, f"c{n}_low": value.low, f"c{n}_high": value.high}
        case DateValue():
            return {f"c{n}_start": value.start, f"c{n}_end": value.end}
        case StringValue():
            return {f"c{n}_text": value.normalized, f"c{n}_code": value.exact[:255]}
        case ReferenceValue():
            target = f"{value.target_type}/{value.target_id}" if value.target_id else value.url
            return {f"c{n}_code": target[:255], f"c{n}_text": value.url[:255]}
        case _:
            return {}


def _clip(text: str | None) -> str | None:
    return text[:MAX_INDEXED] if text is not None else None


def condition(param: SearchParam, values: tuple[str, ...]) -> Any:
    return or_(*(_one(param, v) for v in values))


def _one(param: SearchParam, value: str) -> Any:
    parts = split_unescaped(value, "$")
    if len(parts) != len(param.components):
        raise InvalidSearch(
            f"{param.code} takes {len(param.components)} parts separated by '$'.",
            expression=(param.code,),
        )
    return and_(
        *(
            _part(n, c.type, part)
            for n, (c, part) in enumerate(zip(param.components, parts, strict=True), start=1)
        )
    )


def _part(n: int, component_type: str, text: str) -> Any:
    col = search_composite.c
    match component_type:
        case "token":
            return system_code(text, col[f"c{n}_system"], col[f"c{n}_code"])
        case "quantity" | "number":
            return _quantity(n, text)
        case "date":
            prefix, rest = split_prefix(text)
            period = parse_period(rest)
            return range_condition(
                prefix, period.start, period.end, col[f"c{n}_start"], col[f"c{n}_end"]
            )
        case "string":
            return prefix_between(col[f"c{n}_text"], normalize(unescape(text)))
        case _:  # reference
            target = unescape(text)
            return or_(col[f"c{n}_code"] == target, col[f"c{n}_text"] == target)


def _quantity(n: int, text: str) -> Any:
    """`number[|system|code]`, as a quantity parameter: `||unit` matches the code or the unit."""
    col = search_composite.c
    pieces = [unescape(p) for p in split_unescaped(text, "|")]
    if len(pieces) not in (1, 3):
        raise InvalidSearch(f"'{text[:60]}' is not a quantity (number|system|code).")
    clause = compare(parse_number(pieces[0]), col[f"c{n}_value"])
    if len(pieces) == 1 or not pieces[2]:
        return clause
    system, code = pieces[1], pieces[2][:MAX_INDEXED]
    if system:
        return and_(clause, col[f"c{n}_system"] == system, col[f"c{n}_code"] == code)
    return and_(clause, or_(col[f"c{n}_code"] == code, col[f"c{n}_text"] == code))
