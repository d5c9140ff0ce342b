"""Comparison prefixes and implicit precision ranges for number, quantity and date values
(R4 `search.html#prefix`, `search.html#number`)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from santinel.errors import InvalidSearch

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def split_prefix(value: str) -> tuple[str, str]:
    """(prefix, rest); `eq` when the value carries none."""
    if value[:2] in PREFIXES and len(value) > 2 and not value[2].isalpha():
        return value[:2], value[2:]
    return "eq", value


@dataclass(frozen=True)
class NumberCriterion:
    prefix: str
    value: float
    low: float  # the search value's implicit range: half a unit of its last significant digit
    high: float


def parse_number(text: str) -> NumberCriterion:
    prefix, rest = split_prefix(text.strip())
    if not _NUMBER.fullmatch(rest):
        raise InvalidSearch(f"'{text[:40]}' is not a number.")
    try:
        number = Decimal(rest)
    except InvalidOperation:
        raise InvalidSearch(f"'{text[:40]}' is not a number.") from None
    exponent = number.as_tuple().exponent
    half = (
        Decimal(5) * Decimal(10) ** (int(exponent) - 1) if isinstance(exponent, int) else Decimal(0)
    )
    low, high = float(number - half), float(number + half)
    if high <= low:
        # more digits than a double holds: the range collapses to one double, the one the
        # index holds for that value (it stores doubles): match exactly it
        high = math.nextafter(low, math.inf)
    return NumberCriterion(prefix, float(number), low, high)
