"""Buckets and attempt counters in this process's memory (one node).

asyncio runs one coroutine at a time and nothing here awaits, so every operation is atomic.
At most MAX_KEYS partitions and subjects are kept each; the least recently used go first (a
forgotten bucket is a full one, a forgotten subject has no failures).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypeVar

from santinel.services.ratelimit import bucket
from santinel.services.ratelimit.attempts import Attempt, Subject, expired, free_at
from santinel.services.ratelimit.bucket import Outcome
from santinel.services.ratelimit.rates import Policy

MAX_KEYS = 100_000
V = TypeVar("V")


class MemoryStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: OrderedDict[str, bucket.State] = OrderedDict()
        self._attempts: OrderedDict[str, tuple[int, float]] = OrderedDict()

    async def take(self, partition: str, policy: Policy, cost: int) -> Outcome:
        state, result = bucket.take(
            self._buckets.get(partition, bucket.FULL), policy, cost, self.clock()
        )
        if result.allowed:
            _keep(self._buckets, partition, state)
        return result

    async def attempt(self, subjects: Sequence[Subject]) -> Attempt:
        now = self.clock()
        counts = [self._count(s, now) for s in subjects]
        pairs = zip(subjects, counts, strict=True)
        wait = max((free_at(n, last, s.thresholds) - now for s, (n, last) in pairs), default=0.0)
        if wait > 0:
            return Attempt(wait)
        for subject, (n, _) in zip(subjects, counts, strict=True):
            _keep(self._attempts, subject.key, (n + 1, now))
        return Attempt(0.0, tuple(n + 1 for n, _ in counts))

    async def forgive(self, cleared: Sequence[Subject], undone: Sequence[Subject]) -> None:
        for subject in cleared:
            self._attempts.pop(subject.key, None)
        for subject in undone:
            n, last = self._attempts.get(subject.key, (0, 0.0))
            if n > 0:
                self._attempts[subject.key] = (n - 1, last)

    async def close(self) -> None:
        self._buckets.clear()
        self._attempts.clear()

    def _count(self, subject: Subject, now: float) -> tuple[int, float]:
        n, last = self._attempts.get(subject.key, (0, 0.0))
        return (0, 0.0) if n and expired(last, subject.thresholds, now) else (n, last)


def _keep(table: OrderedDict[str, V], key: str, value: V) -> None:
    table[key] = value
    table.move_to_end(key)
    if len(table) > MAX_KEYS:
        table.popitem(last=False)
