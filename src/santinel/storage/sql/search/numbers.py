"""Number and quantity parameters (R4 `search.html#number`, `search.html#quantity`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_

from santinel.errors import InvalidSearch
from santinel.fhir.search.escaping import split_unescaped, unescape
from santinel.fhir.search.normalize import MAX_INDEXED
from santinel.fhir.search.prefixes import NumberCriterion, parse_number
from santinel.storage.sql.tables import search_number, search_quantity


def number_condition(values: tuple[str, ...]) -> Any:
    t = search_number.c
    return or_(*(compare(parse_number(v), t.value) for v in values))


def quantity_condition(values: tuple[str, ...]) -> Any:
    return or_(*(_quantity(v) for v in values))


def _quantity(value: str) -> Any:
    t = search_quantity.c
    parts = [unescape(p) for p in split_unescaped(value, "|")]
    if len(parts) not in (1, 3):
        raise InvalidSearch(f"'{value[:60]}' is not a quantity (number|system|code).")
    clause = compare(parse_number(parts[0]), t.value)
    if len(parts) == 3:
        system, code = parts[1], parts[2]
        if system:
            clause = and_(clause, t.system == system, t.code == code[:MAX_INDEXED])
        elif code:
            clause = and_(clause, or_(t.code == code[:MAX_INDEXED], t.unit == code))
    return clause


def compare(criterion: NumberCriterion, value: Any) -> Any:
    """`eq` uses the search value's precision: `100` matches [99.5, 100.5)."""
    low, high, exact = criterion.low, criterion.high, criterion.value
    match criterion.prefix:
        case "eq":
            return and_(value >= low, value < high)
        case "ne":
            return or_(value < low, value >= high)
        case "gt" | "sa":
            return value > exact
        case "lt" | "eb":
            return value < exact
        case "ge":
            return value >= exact
        case "le":
            return value <= exact
        case _:  # ap: within 10 %
            margin = abs(exact) * 0.1
            return value.between(exact - margin, exact + margin)
