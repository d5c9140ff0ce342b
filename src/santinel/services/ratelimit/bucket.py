"""Token buckets (pure arithmetic; `redis_store.TAKE` is the same in Lua, run inside Redis).

A partition has up to two buckets, the rate and the quota. A full bucket holds `amount` units
and refills continuously at `amount / seconds` per second. A request of cost `c` is served when
every bucket holds at least `min(c, amount)`; then `c` is taken from each, which may leave a
bucket below zero: a request costing more than a whole bucket (a large transaction) waits for a
full bucket, then is paid back before anything else is served. Either both buckets pay or
neither does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from santinel.services.ratelimit.rates import Policy, Rate


@dataclass(frozen=True)
class Level:
    """A bucket's content at time `at` (seconds on the store's clock)."""

    tokens: float
    at: float


@dataclass(frozen=True)
class Meter:
    """What a response tells about one bucket: units left (never negative) and seconds until
    it is full again."""

    remaining: int
    reset: int


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    rate: Meter | None  # None: the policy has no such bucket
    quota: Meter | None
    retry_after: int = 0  # whole seconds before the same request can be served (when refused)


State = tuple[Level | None, Level | None]  # (rate, quota); None: full (never used, or expired)
FULL: State = (None, None)


def content(level: Level | None, rate: Rate, now: float) -> float:
    if level is None:
        return float(rate.amount)
    return min(float(rate.amount), level.tokens + max(0.0, now - level.at) * rate.per_second)


def take(state: State, policy: Policy, cost: int, now: float) -> tuple[State, Outcome]:
    """Serve or refuse a request of `cost` units; the new state and what to tell the client."""
    rates = (policy.rate, policy.quota)
    levels = [content(lv, r, now) if r else 0.0 for lv, r in zip(state, rates, strict=True)]
    wait = 0.0
    for tokens, rate in zip(levels, rates, strict=True):
        if rate is not None and tokens < min(cost, rate.amount):
            wait = max(wait, (min(cost, rate.amount) - tokens) / rate.per_second)
    allowed = wait == 0.0
    if allowed:
        levels = [t - cost if r else t for t, r in zip(levels, rates, strict=True)]
    new_state: State = (
        Level(levels[0], now) if policy.rate else None,
        Level(levels[1], now) if policy.quota else None,
    )
    return new_state, outcome(allowed, levels, rates, wait)


def outcome(
    allowed: bool, levels: list[float], rates: tuple[Rate | None, Rate | None], wait: float
) -> Outcome:
    meters = [meter(t, r) if r else None for t, r in zip(levels, rates, strict=True)]
    return Outcome(allowed, meters[0], meters[1], 0 if allowed else max(1, math.ceil(wait)))


def meter(tokens: float, rate: Rate) -> Meter:
    missing = rate.amount - tokens
    return Meter(max(0, math.floor(tokens)), max(0, math.ceil(missing / rate.per_second)))


def idle_seconds(state: State, policy: Policy, now: float) -> float:
    """How long until every bucket is full again: after that the state can be forgotten."""
    longest = 0.0
    for level, rate in zip(state, (policy.rate, policy.quota), strict=True):
        if level is not None and rate is not None:
            longest = max(longest, (rate.amount - content(level, rate, now)) / rate.per_second)
    return longest
