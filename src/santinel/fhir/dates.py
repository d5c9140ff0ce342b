"""FHIR date, dateTime and instant values with precision; date prefixes (R4 `search.html#date`).

A value denotes a period: `2024` is the whole year, `2024-05-01T10:00` the whole minute. Comparisons
use the period's bounds in microseconds since the epoch, UTC.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from santinel.errors import InvalidSearch

DATE_PATTERN = re.compile(
    r"(?P<year>\d{4})(-(?P<month>\d{2})(-(?P<day>\d{2})"
    r"(T(?P<hour>\d{2}):(?P<minute>\d{2})(:(?P<second>\d{2})(?P<fraction>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LAST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    """[start, end] inclusive, in microseconds since the epoch."""

    start: int
    end: int


def parse_period(value: str) -> Period:
    """The period a FHIR date/dateTime/instant denotes; a value without zone is taken as UTC."""
    match = DATE_PATTERN.fullmatch(value)
    if not match:
        raise InvalidSearch(f"'{value}' is not a FHIR date, dateTime or instant.")
    try:
        start, end = _bounds(match)
    except ValueError:
        raise InvalidSearch(f"'{value}' is not a valid date.") from None
    return Period(_micros(start), _micros(end) - 1)


def _bounds(match: re.Match[str]) -> tuple[datetime, datetime]:
    g = match.groupdict()
    zone = _zone(g["tz"])
    year = int(g["year"])
    if g["month"] is None:
        start = datetime(year, 1, 1, tzinfo=zone)
        return start, datetime(year + 1, 1, 1, tzinfo=zone) if year < 9999 else LAST
    month = int(g["month"])
    if g["day"] is None:
        start = datetime(year, month, 1, tzinfo=zone)
        return start, _plus(start, timedelta(days=monthrange(year, month)[1]))
    start = datetime(year, month, int(g["day"]), tzinfo=zone)
    if g["hour"] is None:
        return start, _plus(start, timedelta(days=1))
    start = start.replace(hour=int(g["hour"]), minute=int(g["minute"]))
    if g["second"] is None:
        return start, _plus(start, timedelta(minutes=1))
    start = start.replace(second=int(g["second"]))
    if g["fraction"] is None:
        return start, _plus(start, timedelta(seconds=1))
    digits = g["fraction"][1:]
    step = timedelta(microseconds=10 ** max(0, 6 - len(digits)))
    start = start.replace(microsecond=int(digits[:6].ljust(6, "0")))
    return start, _plus(start, step)


def _plus(start: datetime, step: timedelta) -> datetime:
    """The end of a period, at most the last representable instant (the year 9999 ends there)."""
    try:
        return start + step
    except OverflowError:
        return LAST


def _zone(text: str | None) -> timezone:
    if text is None or text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    hours, minutes = int(text[1:3]), int(text[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _micros(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class DateCriterion:
    prefix: str
    period: Period

    def condition(self, column: Any) -> Any:
        """SQL condition on a column holding one instant (microseconds)."""
        start, end = self.period.start, self.period.end
        match self.prefix:
            case "eq" | "ap":
                return column.between(start, end)
            case "ne":
                return ~column.between(start, end)
            case "lt" | "eb":
                return column < start
            case "gt" | "sa":
                return column > end
            case "le":
                return column <= end
            case _:  # ge
                return column >= start


def parse_date_criterion(value: str) -> DateCriterion:
    prefix = value[:2] if value[:2] in PREFIXES else "eq"
    body = value[2:] if value[:2] in PREFIXES else value
    return DateCriterion(prefix, parse_period(body))
