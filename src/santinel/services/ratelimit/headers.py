"""The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers-11, §3 and §4).

Both are Structured Field Lists (RFC 9651) of items named after the policy, a String:

    RateLimit-Policy: "rate";q=600;w=60, "quota";q=100000;w=86400
    RateLimit: "rate";r=598;t=1, "quota";r=99990;t=9

`q` is the bucket's size in quota units and `w` its period in seconds; `r` is what is left now
and `t` the seconds until the bucket is full again (on a refusal, the seconds until this
request can be served, equal to `Retry-After`).
"""

from __future__ import annotations

from santinel.services.ratelimit.bucket import Meter, Outcome
from santinel.services.ratelimit.rates import Policy, Rate

RATE = "rate"
QUOTA = "quota"


def policy_field(policy: Policy) -> str:
    items = [_policy_item(RATE, policy.rate), _policy_item(QUOTA, policy.quota)]
    return ", ".join(i for i in items if i)


def limit_field(outcome: Outcome) -> str:
    items = [_limit_item(RATE, outcome.rate, outcome), _limit_item(QUOTA, outcome.quota, outcome)]
    return ", ".join(i for i in items if i)


def fields(policy: Policy, outcome: Outcome) -> dict[str, str]:
    """The two fields for a response; none for a partition without limits."""
    if policy.unlimited:
        return {}
    return {"RateLimit-Policy": policy_field(policy), "RateLimit": limit_field(outcome)}


def _policy_item(name: str, rate: Rate | None) -> str:
    return f'"{name}";q={rate.amount};w={rate.seconds}' if rate else ""


def _limit_item(name: str, meter: Meter | None, outcome: Outcome) -> str:
    if meter is None:
        return ""
    # a refusal's window is its Retry-After, which must not end before it (§6)
    window = meter.reset if outcome.allowed else outcome.retry_after
    return f'"{name}";r={meter.remaining};t={window}'
