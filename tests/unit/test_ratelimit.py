"""Traffic control's pure parts: limits, costs, token buckets, RateLimit fields, attempts."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from santinel.services.ratelimit import bucket
from santinel.services.ratelimit.attempts import Subject, Thresholds, free_at
from santinel.services.ratelimit.costs import Costs, request_cost
from santinel.services.ratelimit.headers import fields
from santinel.services.ratelimit.memory import MemoryStore
from santinel.services.ratelimit.rates import InvalidRate, Policy, Rate, parse_rate

TEN_PER_MINUTE = Policy(Rate(10, 60))


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("600/minute", Rate(600, 60)),
        (" 5 / seconds ", Rate(5, 1)),
        ("100000/day", Rate(100000, 86400)),
    ],
)
def test_limits_are_read_as_operators_write_them(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["0/minute", "10/week", "ten/minute", "10", "-1/second"])
def test_a_malformed_limit_is_refused(text: str) -> None:
    with pytest.raises(InvalidRate):
        parse_rate(text)


def test_an_empty_limit_means_no_limit() -> None:
    assert parse_rate("") is None
    assert Policy(parse_rate(""), parse_rate(None)).unlimited


def cost(
    method: str, path: str, params: list[tuple[str, str]] | None = None, body: object = None
) -> int:
    segments = tuple(p for p in path.split("/") if p)
    raw = orjson.dumps(body) if body is not None else b""
    return request_cost(Costs(), method, segments, tuple(params or ()), raw)


def test_each_interaction_has_its_default_cost() -> None:
    assert cost("GET", "Patient/1") == 1
    assert cost("GET", "Patient/1/_history/2") == 1
    assert cost("GET", "metadata") == 1
    assert cost("GET", "Patient") == 2
    assert cost("POST", "Patient/_search") == 2
    assert cost("GET", "Patient/1/Observation") == 2
    assert cost("GET", "_history") == 2
    assert cost("POST", "Patient") == 5
    assert cost("PUT", "Patient/1") == 5
    assert cost("PATCH", "Patient/1") == 5
    assert cost("DELETE", "Patient?name=x") == 5
    assert cost("GET", "Patient/1/$everything") == 20
    assert cost("GET", "$export") == 50


def test_includes_and_revincludes_add_to_a_search() -> None:
    params = [("_include", "Observation:subject"), ("_revinclude:iterate", "Provenance:target")]
    assert cost("GET", "Observation", [*params, ("code", "x")]) == 4


def test_a_bundle_costs_per_entry_read_or_write() -> None:
    entries = [{"request": {"method": "GET", "url": "Patient/1"}}] * 3 + [
        {"request": {"method": "POST", "url": "Patient"}, "resource": {"resourceType": "Patient"}}
    ] * 2
    body = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    assert cost("POST", "", body=body) == 3 * 1 + 2 * 5


def test_an_unreadable_bundle_costs_one_write() -> None:
    assert request_cost(Costs(), "POST", (), (), b"{not json") == 5


def test_costs_are_configurable_and_checked() -> None:
    costs = Costs.parse("search=3, write=10")
    assert (costs.search, costs.write, costs.read) == (3, 10, 1)
    with pytest.raises(ValueError, match="not a cost"):
        Costs.parse("serch=3")


def test_a_bucket_serves_its_size_then_refills_with_time() -> None:
    state = bucket.FULL
    for _ in range(10):
        state, outcome = bucket.take(state, TEN_PER_MINUTE, 1, now=100.0)
        assert outcome.allowed
    state, refused = bucket.take(state, TEN_PER_MINUTE, 1, now=100.0)
    assert not refused.allowed
    assert refused.retry_after == 6  # one unit every 6 seconds
    _, later = bucket.take(state, TEN_PER_MINUTE, 1, now=106.0)
    assert later.allowed


def test_a_request_pays_its_cost() -> None:
    _, outcome = bucket.take(bucket.FULL, TEN_PER_MINUTE, 4, now=0.0)
    assert outcome.rate == bucket.Meter(remaining=6, reset=24)


def test_a_request_larger_than_the_bucket_waits_for_a_full_bucket_then_leaves_a_debt() -> None:
    state, outcome = bucket.take(bucket.FULL, TEN_PER_MINUTE, 25, now=0.0)
    assert outcome.allowed
    assert outcome.rate is not None
    assert outcome.rate.remaining == 0
    _, next_one = bucket.take(state, TEN_PER_MINUTE, 1, now=60.0)  # 10 back: still 5 in debt
    assert not next_one.allowed


def test_rate_and_quota_pay_together_or_not_at_all() -> None:
    policy = Policy(Rate(10, 1), Rate(3, 86400))
    state = bucket.FULL
    for _ in range(3):
        state, outcome = bucket.take(state, policy, 1, now=0.0)
        assert outcome.allowed
    state, refused = bucket.take(state, policy, 1, now=0.0)
    assert not refused.allowed
    assert refused.rate is not None
    assert refused.rate.remaining == 7
    assert refused.retry_after == 28800  # a day's quota of 3: one unit every 8 hours


def test_ratelimit_fields_follow_the_draft_syntax() -> None:
    policy = Policy(Rate(600, 60), Rate(100000, 86400))
    _, outcome = bucket.take(bucket.FULL, policy, 2, now=0.0)
    assert fields(policy, outcome) == {
        "RateLimit-Policy": '"rate";q=600;w=60, "quota";q=100000;w=86400',
        "RateLimit": '"rate";r=598;t=1, "quota";r=99998;t=2',
    }


def test_a_refusal_names_retry_after_as_its_window() -> None:
    policy = Policy(Rate(1, 60))
    state, _ = bucket.take(bucket.FULL, policy, 1, now=0.0)
    _, refused = bucket.take(state, policy, 1, now=0.0)
    assert fields(policy, refused)["RateLimit"] == '"rate";r=0;t=60'


def test_an_unlimited_partition_gets_no_fields() -> None:
    assert fields(Policy(), bucket.Outcome(True, None, None)) == {}


RULES = Thresholds(slow_after=3, lock_after=5, lock_seconds=900)


def test_failures_slow_then_lock() -> None:
    assert free_at(2, 100.0, RULES) == 0.0
    assert free_at(3, 100.0, RULES) == 101.0
    assert free_at(4, 100.0, RULES) == 102.0
    assert free_at(5, 100.0, RULES) == 1000.0


def test_the_memory_store_counts_attempts_and_forgives_a_success() -> None:
    now = [0.0]
    store = MemoryStore(clock=lambda: now[0])
    account = Subject("user", "user:x", "sha256:x", RULES)
    address = Subject("ip", "ip:1", "1", Thresholds(10, 20, 900))

    async def scenario() -> None:
        for expected in (1, 2, 3):
            attempt = await store.attempt([account, address])
            assert attempt.wait == 0
            assert attempt.counts == (expected, expected)
        refused = await store.attempt([account, address])
        assert refused.wait == 1.0  # slowed: 1 s after the third failure
        now[0] += 1.0
        assert (await store.attempt([account, address])).counts == (4, 4)
        await store.forgive([account], [address])
        assert (await store.attempt([account, address])).counts == (1, 4)
        now[0] += 900.0
        assert (await store.attempt([account, address])).counts == (1, 1)  # forgotten

    asyncio.run(scenario())
