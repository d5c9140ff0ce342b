"""Calendar checks of FHIR date, dateTime and instant values.

The R4 regexes (which fhirkit enforces) bound each field on its own: a day is 01-31 whatever the
month, so `2023-02-30` or `2023-04-31` pass. Here the day is checked against its month and year
(leap years included), and the other fields again, so the check stands on its own. R4 allows a
leap second (`:60`) and no `24:00`; year 0000 is outside its regex (and every calendar).
"""

from __future__ import annotations

import re
from calendar import monthrange

DATE_TIME = re.compile(
    r"(?P<year>\d{4})(-(?P<month>\d{2})(-(?P<day>\d{2})"
    r"(T(?P<hour>\d{2}):(?P<minute>\d{2})(:(?P<second>\d{2})(\.\d+)?)?"
    r"(Z|[+-](?P<tzh>\d{2}):(?P<tzm>\d{2}))?)?)?)?"
)


def calendar_problem(value: str) -> str | None:
    """Why `value` is not a real date or moment; None when it is (or is not date-shaped at all:
    the format is fhirkit's to report)."""
    match = DATE_TIME.fullmatch(value)
    if match is None:
        return None
    year = int(match["year"])
    if year == 0:
        return "the year 0000 does not exist"
    if match["month"] is None:
        return None
    month = int(match["month"])
    if not 1 <= month <= 12:
        return f"there is no month {month}"
    if match["day"] is None:
        return None
    day, days_in_month = int(match["day"]), monthrange(year, month)[1]
    if not 1 <= day <= days_in_month:
        return f"{year:04d}-{month:02d} has {days_in_month} days, not {day}"
    if match["hour"] is None:
        return None
    if int(match["hour"]) > 23 or int(match["minute"]) > 59:
        return "the time of day is out of range (00:00 to 23:59)"
    if match["second"] is not None and int(match["second"]) > 60:  # 60: a leap second
        return "the seconds are out of range"
    if match["tzh"] is not None and (int(match["tzh"]) > 14 or int(match["tzm"]) > 59):
        return "the time zone offset is out of range"
    return None
