"""Date parameters against indexed periods [start, end] (R4 `search.html#date`).

The search value is a period too (its precision); prefixes compare the two ranges as the spec
describes, e.g. `eq`: the indexed period lies within the search period.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_

from santinel.fhir.dates import parse_period
from santinel.fhir.resource import now_micros
from santinel.fhir.search.prefixes import split_prefix
from santinel.storage.sql.tables import search_date

DAY_US = 86_400_000_000


def condition(values: tuple[str, ...]) -> Any:
    return or_(*(_one(v) for v in values))


def _one(value: str) -> Any:
    prefix, text = split_prefix(value)
    period = parse_period(text)
    return range_condition(
        prefix, period.start, period.end, search_date.c.start_us, search_date.c.end_us
    )


def range_condition(prefix: str, low: int, high: int, start: Any, end: Any) -> Any:
    """Compare indexed [start, end] with the search range [low, high] per `prefix`."""
    within = and_(start >= low, end <= high)
    match prefix:
        case "eq":
            return within
        case "ne":
            return ~within
        case "gt":
            return end > high
        case "lt":
            return start < low
        case "ge":
            return or_(end > high, within)
        case "le":
            return or_(start < low, within)
        case "sa":
            return start > high
        case "eb":
            return end < low
        case _:  # ap: overlap with the range widened by 10 % of its distance to now
            margin = approximate_margin(low, high)
            return and_(start <= high + margin, end >= low - margin)


def approximate_margin(low: int, high: int) -> int:
    """How far `ap` widens a search range: 10 % of its distance to now, at least a day."""
    return max(abs(now_micros() - (low + high) // 2) // 10, DAY_US)


def period_matches(prefix: str, low: int, high: int, start: int, end: int, margin: int) -> bool:
    """`range_condition` evaluated in Python on one indexed period [start, end]."""
    within = start >= low and end <= high
    match prefix:
        case "eq":
            return within
        case "ne":
            return not within
        case "gt":
            return end > high
        case "lt":
            return start < low
        case "ge":
            return end > high or within
        case "le":
            return start < low or within
        case "sa":
            return start > high
        case "eb":
            return end < low
        case _:
            return start <= high + margin and end >= low - margin
