"""Buckets and attempt counters in Redis, shared by every node.

Each operation is one Lua script run atomically by Redis, on Redis's own clock (`TIME`), so
nodes whose clocks differ still share one budget, and a check and its update can never
interleave with another node's. Keys (all under the configured prefix, `santinel:` by default):

- `{prefix}rl:client:<client_id>` / `{prefix}rl:ip:<address>` / `{prefix}rl:oauth-ip:<address>`:
  a hash with the rate bucket (`rt` tokens at `ra` seconds) and the quota bucket (`qt`, `qa`);
  it expires when both buckets would be full again;
- `{prefix}bf:client:<client_id>` / `{prefix}bf:user:<sha256 of the username>` /
  `{prefix}bf:ip:<address>`: a hash with the attempt count `n` and the last attempt `at`; it
  expires `lock_seconds` after the last attempt.

A Redis that does not answer within `TIMEOUT_SECONDS` (or refuses the connection) raises
`StoreUnavailable` at once, without retries: the limiter then fails closed (or open).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from santinel.services.ratelimit import bucket
from santinel.services.ratelimit.attempts import Attempt, Subject
from santinel.services.ratelimit.bucket import Outcome
from santinel.services.ratelimit.rates import Policy
from santinel.services.ratelimit.store import StoreUnavailable

TIMEOUT_SECONDS = 1.0

# KEYS[1] the partition; ARGV: cost, rate amount, rate seconds, quota amount, quota seconds
# (amount 0: no such bucket). Mirrors `bucket.take`. Returns the two levels and the wait.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cost = tonumber(ARGV[1])
local old = redis.call('HMGET', KEYS[1], 'rt', 'ra', 'qt', 'qa')
local levels = {0, 0}
local wait = 0
for i = 1, 2 do
  local amount, seconds = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  if amount > 0 then
    local per = amount / seconds
    local tokens = tonumber(old[2 * i - 1])
    if tokens == nil then
      tokens = amount
    else
      tokens = math.min(amount, tokens + math.max(0, now - tonumber(old[2 * i])) * per)
    end
    local need = math.min(cost, amount)
    if tokens < need then wait = math.max(wait, (need - tokens) / per) end
    levels[i] = tokens
  end
end
if wait == 0 then
  local ttl = 0
  for i = 1, 2 do
    local amount, seconds = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
    if amount > 0 then
      levels[i] = levels[i] - cost
      ttl = math.max(ttl, (amount - levels[i]) * seconds / amount)
    end
  end
  redis.call('HSET', KEYS[1], 'rt', tostring(levels[1]), 'ra', tostring(now),
             'qt', tostring(levels[2]), 'qa', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000) + 1000)
end
return {tostring(levels[1]), tostring(levels[2]), tostring(wait)}
"""

# KEYS: the subjects; ARGV: 4 per subject (slow_after, lock_after, lock_seconds, max_delay).
# Mirrors `attempts.free_at`. Returns {wait} when refused, else {0, count after, …}.
ATTEMPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = 0
local counts = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'n', 'at')
  local n, at = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  local slow, lock = tonumber(ARGV[4 * i - 3]), tonumber(ARGV[4 * i - 2])
  local lock_s, max_delay = tonumber(ARGV[4 * i - 1]), tonumber(ARGV[4 * i])
  local free = 0
  if n >= lock then
    free = at + lock_s
  elseif n >= slow then
    free = at + math.min(2 ^ (n - slow), max_delay)
  end
  if free > now then wait = math.max(wait, free - now) end
  counts[i] = n
end
if wait > 0 then return {tostring(wait)} end
local out = {'0'}
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'n', counts[i] + 1, 'at', tostring(now))
  redis.call('EXPIRE', key, tonumber(ARGV[4 * i - 1]))
  out[i + 1] = counts[i] + 1
end
return out
"""

# KEYS: subjects to clear (ARGV[1] of them), then subjects whose count goes down by one.
FORGIVE = """
local cleared = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if i <= cleared then
    redis.call('DEL', key)
  elseif (tonumber(redis.call('HGET', key, 'n')) or 0) > 0 then
    redis.call('HINCRBY', key, 'n', -1)
  end
end
return 0
"""


class RedisStore:
    def __init__(self, url: str, prefix: str) -> None:
        self.prefix = prefix
        self.client: Redis = Redis.from_url(
            url,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        self._take = self.client.register_script(TAKE)
        self._attempt = self.client.register_script(ATTEMPT)
        self._forgive = self.client.register_script(FORGIVE)

    async def take(self, partition: str, policy: Policy, cost: int) -> Outcome:
        rate, quota = policy.rate, policy.quota
        args = [
            cost,
            rate.amount if rate else 0,
            rate.seconds if rate else 1,
            quota.amount if quota else 0,
            quota.seconds if quota else 1,
        ]
        reply = await self._run(self._take, [f"{self.prefix}rl:{partition}"], args)
        levels = [float(reply[0]), float(reply[1])]
        wait = float(reply[2])
        return bucket.outcome(wait == 0, levels, (rate, quota), wait)

    async def attempt(self, subjects: Sequence[Subject]) -> Attempt:
        args: list[float] = []
        for s in subjects:
            rules = s.thresholds
            args += [rules.slow_after, rules.lock_after, rules.lock_seconds, rules.max_delay]
        reply = await self._run(self._attempt, [self._key(s) for s in subjects], args)
        wait = float(reply[0])
        if wait > 0:
            return Attempt(wait)
        return Attempt(0.0, tuple(int(n) for n in reply[1:]))

    async def forgive(self, cleared: Sequence[Subject], undone: Sequence[Subject]) -> None:
        keys = [self._key(s) for s in (*cleared, *undone)]
        if keys:
            await self._run(self._forgive, keys, [len(cleared)])

    async def close(self) -> None:
        await self.client.aclose()

    def _key(self, subject: Subject) -> str:
        return f"{self.prefix}bf:{subject.key}"

    @staticmethod
    async def _run(script: Any, keys: list[str], args: Sequence[float]) -> list[Any]:
        try:
            reply = await script(keys=keys, args=list(args))
        except (RedisError, OSError) as error:
            raise StoreUnavailable(type(error).__name__) from None
        return list(reply) if isinstance(reply, list) else [reply]
