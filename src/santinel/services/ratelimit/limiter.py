"""`TrafficControl`: the rate-limit and brute-force decisions, built once by the container.

Partitions: an authenticated client spends from `client:<client_id>` (its own rate and quota
from `santinel clients add --rate-limit/--quota`, else its tier's defaults); an anonymous caller
of the public tier, or one whose token failed, from `ip:<address>` (the public tier's
defaults); the OAuth endpoints from `oauth-ip:<address>` (`rate_limit_oauth`).

When the store does not answer (Redis down), every limited request is refused with 503
`transient` and `Retry-After` (fail closed), unless `rate_limit_fail_open` lets it through
unlimited; either way a warning is logged (at most every WARN_EVERY seconds).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from santinel.auth import tiers
from santinel.errors import FhirError
from santinel.logging import get_logger
from santinel.services.ratelimit import headers
from santinel.services.ratelimit.attempts import Subject, Thresholds
from santinel.services.ratelimit.costs import Costs
from santinel.services.ratelimit.events import LOCKOUT, SecurityEvent, security_event
from santinel.services.ratelimit.memory import MemoryStore
from santinel.services.ratelimit.rates import Policy, parse_rate, policy
from santinel.services.ratelimit.redis_store import RedisStore
from santinel.services.ratelimit.store import Store, StoreUnavailable
from santinel.settings import Settings
from santinel.storage.sql.auth_store import SqlAuthStore

TERMS_TTL = 2.0  # seconds a client's limits and contract may take to apply on this node
UNAVAILABLE_RETRY_SECONDS = 5
WARN_EVERY = 10.0
RATE_SETTINGS = (
    "rate_limit_internal",
    "quota_internal",
    "rate_limit_partner",
    "quota_partner",
    "rate_limit_public",
    "quota_public",
    "rate_limit_oauth",
)

log = get_logger("santinel.traffic")


class InvalidTrafficSettings(ValueError):
    """A limit, a cost or a public type in the settings cannot be used; the message says which."""


class Throttled(FhirError):
    """Over a rate limit or quota, or slowed after failed attempts: 429 (RFC 6585 §4)."""

    status = 429
    code = "throttled"


class LimiterUnavailable(FhirError):
    """The shared limiter store did not answer and the server fails closed."""

    status = 503
    code = "transient"


@dataclass(frozen=True)
class ClientTerms:
    """A client's limits and partner contract, as registered (None: no contract)."""

    policy: Policy
    allowed_types: frozenset[str] | None = None
    purposes: frozenset[str] | None = None


@dataclass
class Admission:
    """The RateLimit fields a response carries (filled once the request is admitted)."""

    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ticket:
    """An attempt let through: its subjects and their counts including it."""

    subjects: tuple[Subject, ...]
    counts: tuple[int, ...]
    address: str


class TrafficControl:
    def __init__(self, settings: Settings, store: Store, clients: SqlAuthStore) -> None:
        self.store = store
        self.clients = clients
        self.enabled = settings.rate_limit_enabled
        self.fail_open = settings.rate_limit_fail_open
        self.costs = Costs.parse(settings.rate_limit_costs)
        self.tiers = {
            "internal": policy(settings.rate_limit_internal, settings.quota_internal),
            "partner": policy(settings.rate_limit_partner, settings.quota_partner),
            "public": policy(settings.rate_limit_public, settings.quota_public),
        }
        self.oauth = Policy(parse_rate(settings.rate_limit_oauth))
        self.public_types = tiers.public_types(settings.public_types)
        self.account_rules = Thresholds(
            settings.brute_force_slow_after,
            settings.brute_force_lock_after,
            settings.brute_force_lock_seconds,
        )
        self.address_rules = Thresholds(
            settings.brute_force_ip_slow_after,
            settings.brute_force_ip_lock_after,
            settings.brute_force_lock_seconds,
        )
        self._terms: dict[str, tuple[float, ClientTerms]] = {}
        self._loading: dict[str, asyncio.Future[ClientTerms]] = {}
        self._warned = -math.inf

    @staticmethod
    def check(settings: Settings) -> None:
        """Refuse settings the limiter cannot use (at start, with a message for operators)."""
        try:
            Costs.parse(settings.rate_limit_costs)
            tiers.public_types(settings.public_types)
            for name in RATE_SETTINGS:
                parse_rate(getattr(settings, name))
        except ValueError as problem:
            raise InvalidTrafficSettings(str(problem)) from None

    @classmethod
    def build(cls, settings: Settings, clients: SqlAuthStore) -> TrafficControl:
        store: Store = (
            RedisStore(settings.redis_url, settings.redis_prefix)
            if settings.redis_url
            else MemoryStore()
        )
        return cls(settings, store, clients)

    async def close(self) -> None:
        await self.store.close()

    # -- rate limits and quotas ---------------------------------------------------------------
    def tier_policy(self, tier: str) -> Policy:
        return self.tiers.get(tier, self.tiers["public"])

    async def terms(self, client_id: str, tier: str) -> ClientTerms:
        """The client's limits and contract, read from the store at most every TERMS_TTL s."""
        cached = self._terms.get(client_id)
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        loading = self._loading.get(client_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(client_id, tier))
            self._loading[client_id] = loading
            loading.add_done_callback(lambda _: self._loading.pop(client_id, None))
        return await asyncio.shield(loading)

    async def _load(self, client_id: str, tier: str) -> ClientTerms:
        started = time.monotonic()
        record = await self.clients.client(client_id)
        default = self.tier_policy(tier)
        if record is None:
            terms = ClientTerms(default)
        else:
            terms = ClientTerms(
                Policy(
                    parse_rate(record.rate_limit) if record.rate_limit else default.rate,
                    parse_rate(record.quota) if record.quota else default.quota,
                ),
                _words(record.allowed_types),
                _words(record.purposes),
            )
        self._terms[client_id] = (started + TERMS_TTL, terms)
        return terms

    async def spend(
        self, partition: str, policy: Policy, cost: int, admission: Admission | None = None
    ) -> None:
        """Take `cost` units from the partition, or refuse the request (429)."""
        if not self.enabled or policy.unlimited:
            return
        try:
            outcome = await self.store.take(partition, policy, cost)
        except StoreUnavailable as problem:
            self._unavailable(problem)
            return
        fields = headers.fields(policy, outcome)
        if admission is not None:
            admission.headers.update(fields)
        if not outcome.allowed:
            spent = "quota" if outcome.quota and outcome.quota.remaining < cost else "rate limit"
            raise Throttled(
                f"Too many requests: this {spent} is spent (the request costs {cost} units); "
                f"retry after {outcome.retry_after} s.",
                headers={**fields, "Retry-After": str(outcome.retry_after)},
            )

    # -- brute force ------------------------------------------------------------------------
    def account(self, kind: str, name: str) -> Subject:
        """The subject of a client_id (`kind` client) or a username (`kind` user)."""
        if kind == "user":
            digest = hashlib.sha256(name.strip().lower().encode()).hexdigest()[:32]
            return Subject("user", f"user:{digest}", f"sha256:{digest[:16]}", self.account_rules)
        return Subject("client", f"client:{name[:200]}", name[:200], self.account_rules)

    def address(self, address: str) -> Subject:
        return Subject("ip", f"ip:{address}", address, self.address_rules)

    async def begin_attempt(self, subjects: Sequence[Subject], address: str) -> Ticket:
        """Count an attempt, or refuse it (429) while one of its subjects is slowed or locked."""
        try:
            attempt = await self.store.attempt(subjects)
        except StoreUnavailable as problem:
            self._unavailable(problem)
            return Ticket((), (), address)
        if attempt.wait > 0:
            seconds = max(1, math.ceil(attempt.wait))
            raise Throttled(
                f"Too many failed attempts: try again in {seconds} s.",
                headers={"Retry-After": str(seconds)},
            )
        return Ticket(tuple(subjects), attempt.counts, address)

    def failed(self, ticket: Ticket) -> None:
        """The attempt failed: it stays counted; a subject it locks is reported."""
        for subject, count in zip(ticket.subjects, ticket.counts, strict=True):
            if count == subject.thresholds.lock_after:
                security_event(
                    SecurityEvent(
                        LOCKOUT,
                        subject.kind,
                        subject.shown,
                        ticket.address,
                        count,
                        subject.thresholds.lock_seconds,
                    )
                )

    async def succeeded(self, ticket: Ticket) -> None:
        """The attempt succeeded: the account's failures are forgotten, the address gets this
        attempt back (not its other failures)."""
        cleared = [s for s in ticket.subjects if s.kind != "ip"]
        undone = [s for s in ticket.subjects if s.kind == "ip"]
        try:
            await self.store.forgive(cleared, undone)
        except StoreUnavailable as problem:
            self._warn(problem)

    async def taken_back(self, ticket: Ticket) -> None:
        """The attempt checked no credential (a malformed request): it no longer counts."""
        try:
            await self.store.forgive((), ticket.subjects)
        except StoreUnavailable as problem:
            self._warn(problem)

    # -- the store is down ------------------------------------------------------------------
    def _unavailable(self, problem: StoreUnavailable) -> None:
        self._warn(problem)
        if not self.fail_open:
            raise LimiterUnavailable(
                "Rate limiting is unavailable; the request was not processed. Retry later.",
                headers={"Retry-After": str(UNAVAILABLE_RETRY_SECONDS)},
            )

    def _warn(self, problem: StoreUnavailable) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            log.warning(
                "rate-limit store unavailable",
                error=str(problem),
                behaviour="fail open" if self.fail_open else "fail closed",
            )


def _words(text: str | None) -> frozenset[str] | None:
    words = frozenset((text or "").split())
    return words or None
