"""Limits and quotas as operators write them (`600/minute`, `100000/day`) and a client's policy.

A rate is a token bucket holding `amount` quota units, refilled at `amount` per `seconds`; a
quota is the same with a longer period (a day). Both apply together: a request is served when
both buckets can pay its cost (`santinel.services.ratelimit.bucket`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
GRAMMAR = re.compile(r"\s*([1-9][0-9]{0,11})\s*/\s*(second|minute|hour|day)s?\s*")


class InvalidRate(ValueError):
    """A limit that does not follow `N/second|minute|hour|day`; the message is for operators."""


@dataclass(frozen=True)
class Rate:
    amount: int  # quota units the bucket holds when full
    seconds: int  # the period in which `amount` units come back

    @property
    def per_second(self) -> float:
        return self.amount / self.seconds

    def text(self) -> str:
        unit = next(name for name, seconds in UNITS.items() if seconds == self.seconds)
        return f"{self.amount}/{unit}"


@dataclass(frozen=True)
class Policy:
    """What one partition (a client, or an address) may spend; None: no such limit."""

    rate: Rate | None = None
    quota: Rate | None = None

    @property
    def unlimited(self) -> bool:
        return self.rate is None and self.quota is None


def parse_rate(text: str | None) -> Rate | None:
    """`600/minute` → Rate(600, 60); empty or None → None (no limit)."""
    if text is None or not text.strip():
        return None
    match = GRAMMAR.fullmatch(text)
    if match is None:
        raise InvalidRate(
            f"{text[:40]!r} is not a limit: write N/second, N/minute, N/hour or N/day "
            "(N a positive integer)."
        )
    return Rate(int(match.group(1)), UNITS[match.group(2)])


def policy(rate: str | None, quota: str | None) -> Policy:
    return Policy(parse_rate(rate), parse_rate(quota))
