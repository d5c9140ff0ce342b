"""Brute force on sign-in and client authentication: slowed, then locked (pure rules).

Every attempt is counted per subject (the account — a client_id or a username — and the
caller's address) before the credentials are checked, so that parallel guesses count too; a
success clears the account and takes its own attempt back from the address. From `slow_after`
counted failures on, the next attempt must wait 1 s, then 2 s, 4 s… (at most `max_delay`) after
the previous one; from `lock_after` on, the subject is locked for `lock_seconds`. A subject
forgets its failures `lock_seconds` after its last attempt.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    slow_after: int
    lock_after: int
    lock_seconds: int
    max_delay: float = 60.0


@dataclass(frozen=True)
class Subject:
    """Whose attempts are counted: `kind` is client, user or ip; `key` names it in the store
    (a username is kept as a digest: people type passwords into that field)."""

    kind: str
    key: str
    shown: str  # what a log or an audit record may show about it
    thresholds: Thresholds


@dataclass(frozen=True)
class Attempt:
    """An attempt let through (`wait` 0, with each subject's count including it), or refused
    for `wait` more seconds."""

    wait: float
    counts: tuple[int, ...] = ()


def free_at(count: int, last: float, rules: Thresholds) -> float:
    """When a subject with `count` failures, the last at `last`, may try again."""
    if count >= rules.lock_after:
        return last + rules.lock_seconds
    if count >= rules.slow_after:
        return last + min(2.0 ** (count - rules.slow_after), rules.max_delay)
    return 0.0


def expired(last: float, rules: Thresholds, now: float) -> bool:
    return now - last >= rules.lock_seconds
