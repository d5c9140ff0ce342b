"""Where buckets and attempt counters live: the protocol both stores implement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from santinel.services.ratelimit.attempts import Attempt, Subject
from santinel.services.ratelimit.bucket import Outcome
from santinel.services.ratelimit.rates import Policy


class StoreUnavailable(RuntimeError):
    """The shared store (Redis) did not answer: the caller fails closed, or open if told to."""


class Store(Protocol):
    async def take(self, partition: str, policy: Policy, cost: int) -> Outcome:
        """Serve or refuse `cost` units from the partition's buckets, atomically."""
        ...

    async def attempt(self, subjects: Sequence[Subject]) -> Attempt:
        """Count one attempt for every subject, unless one of them must still wait."""
        ...

    async def forgive(self, cleared: Sequence[Subject], undone: Sequence[Subject]) -> None:
        """After a success: forget `cleared` subjects' failures, take one back from `undone`."""
        ...

    async def close(self) -> None: ...
