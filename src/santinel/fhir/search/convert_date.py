"""Date index values (R4 `search.html#date`): every value is a period in microseconds.

A date, dateTime or instant denotes its whole precision (`1974-12` is the month); a Period's
open end is unbounded (`DATE_MIN` / `DATE_MAX`); a Timing counts for its outer limits only (from
its first event or bounds start to its last event or bounds end), as the specification allows.
Values that are not valid dates are not indexed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from santinel.errors import InvalidSearch
from santinel.fhir.dates import EPOCH, Period, parse_period
from santinel.fhir.search.fhirpath import Node
from santinel.fhir.search.values import DateValue

DATE_MIN = parse_period("0001").start
DATE_MAX = (datetime.max.replace(tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


def date_values(param: str, node: Node) -> Iterator[DateValue]:
    data = node.data
    if isinstance(data, Mapping):
        kind = node.type or ("Timing" if "event" in data or "repeat" in data else "Period")
        bounds = _timing(data) if kind == "Timing" else _period(data)
        if bounds is not None:
            yield DateValue(param, *bounds)
        return
    period = _parse(data)
    if period is not None:
        yield DateValue(param, period.start, period.end)


def _parse(value: Any) -> Period | None:
    if not isinstance(value, str):
        value = str(value) if value is not None and not isinstance(value, bool | int) else None
    if value is None:
        return None
    try:
        return parse_period(value.removeprefix("@"))
    except (InvalidSearch, OverflowError):  # OverflowError: the last day of year 9999
        return None


def _period(data: Mapping[str, Any]) -> tuple[int, int] | None:
    start, end = _parse(data.get("start")), _parse(data.get("end"))
    if start is None and end is None:
        return None
    return (start.start if start else DATE_MIN), (end.end if end else DATE_MAX)


def _timing(data: Mapping[str, Any]) -> tuple[int, int] | None:
    periods = [p for p in map(_parse, data.get("event") or ()) if p is not None]
    repeat = data.get("repeat")
    bounds = repeat.get("boundsPeriod") if isinstance(repeat, Mapping) else None
    if isinstance(bounds, Mapping):
        limits = _period(bounds)
        if limits is not None:
            periods.append(Period(*limits))
    if not periods:
        return None
    return min(p.start for p in periods), max(p.end for p in periods)
