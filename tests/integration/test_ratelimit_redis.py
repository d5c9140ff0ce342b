"""Rate limits shared through a real Redis by two real `santinel serve` processes, and what
happens when Redis is unreachable (fail closed by default, fail open when told)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from santinel.services.ratelimit.rates import Policy, Rate
from santinel.services.ratelimit.redis_store import RedisStore
from santinel.settings import Settings
from tests.auth import register_client
from tests.integration.processes import ServerProcess
from tests.services import LiveServer, free_port, service_missing

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix of this test alone; its keys are deleted afterwards."""
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        connection.ping()
    except redis.RedisError as error:
        connection.close()
        service_missing(f"Redis at {REDIS_URL} ({type(error).__name__})")
    name = f"santinel-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield name
    finally:
        for key in connection.scan_iter(match=f"{name}*"):
            connection.delete(key)
        connection.close()


def add_client(settings: Settings, **fields: Any) -> tuple[str, str]:
    return register_client(settings, "system/*.rs", **fields)


def token(url: str, credentials: tuple[str, str]) -> httpx.Response:
    data = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    return httpx.post(f"{url}/oauth/token", auth=credentials, data=data, headers=FORM)


def test_two_servers_on_one_redis_enforce_one_budget(tmp_path: Path, prefix: str) -> None:
    data_dir = tmp_path / "shared"
    store = ["--data-dir", str(data_dir)]
    env = {
        "SANTINEL_REDIS_PREFIX": prefix,
        "SANTINEL_BRUTE_FORCE_SLOW_AFTER": "3",
        "SANTINEL_PUBLIC_BASE_URL": "http://santinel.test/fhir",  # one service: tokens for both
    }
    extra = ["--redis-url", REDIS_URL]
    with (
        ServerProcess(store, tmp_path / "a.log", extra=extra, env=env) as a,
        ServerProcess(store, tmp_path / "b.log", extra=extra, env=env) as b,
    ):
        credentials = add_client(Settings(data_dir=data_dir), rate_limit="20/hour")
        bearer = {"Authorization": f"Bearer {token(a.url, credentials).json()['access_token']}"}
        served = {a.base: 0, b.base: 0}
        refused = 0
        for i in range(30):
            base = (a.base, b.base)[i % 2]
            response = httpx.get(f"{base}/Organization/none", headers=bearer)
            if response.status_code == 429:
                refused += 1
            else:
                assert response.status_code == 404
                served[base] += 1
        assert sum(served.values()) == 20  # one budget of 20, not 20 per node
        assert refused == 10
        assert min(served.values()) >= 5
        keys = redis.Redis.from_url(REDIS_URL)
        ttl = keys.pttl(f"{prefix}rl:client:{credentials[0]}")
        keys.close()
        assert 0 < ttl <= 3_601_000

        # sign-in failures too: three at one node slow the account down at the other
        wrong = (credentials[0], "wrong")
        for _ in range(3):
            assert token(a.url, wrong).status_code == 401
        slowed = token(b.url, credentials)
        assert slowed.status_code == 429
        assert slowed.headers["retry-after"] == "1"


def test_concurrent_requests_never_overspend_a_shared_bucket(prefix: str) -> None:
    async def scenario() -> list[bool]:
        stores = [RedisStore(REDIS_URL, prefix) for _ in range(4)]  # four "nodes"
        policy = Policy(Rate(30, 3600))
        try:
            outcomes = await asyncio.gather(
                *(stores[i % 4].take("client:race", policy, 1) for i in range(120))
            )
        finally:
            for store in stores:
                await store.close()
        return [o.allowed for o in outcomes]

    assert sum(asyncio.run(scenario())) == 30


@pytest.fixture
def closed_port_settings(tmp_path: Path) -> dict[str, Any]:
    return {"data_dir": tmp_path, "redis_url": f"redis://127.0.0.1:{free_port()}/0"}


def test_with_redis_down_the_server_fails_closed(closed_port_settings: dict[str, Any]) -> None:
    with LiveServer(Settings(**closed_port_settings)) as live:
        started = time.monotonic()
        response = httpx.get(
            f"{live.base}/Organization", headers={"Accept": "application/fhir+json"}
        )
        assert time.monotonic() - started < 5
        assert response.status_code == 503
        assert response.json()["issue"][0]["code"] == "transient"
        assert response.headers["retry-after"] == "5"
        refused = token(live.url, add_client(live.settings))
        assert refused.status_code == 503
        assert refused.json()["error"] == "temporarily_unavailable"
        assert refused.headers["retry-after"] == "5"
        assert httpx.get(f"{live.url}/healthz").status_code == 200


def test_with_redis_down_the_server_can_be_told_to_fail_open(
    closed_port_settings: dict[str, Any],
) -> None:
    settings = Settings(**closed_port_settings, rate_limit_fail_open=True)
    with LiveServer(settings) as live:
        anonymous = httpx.get(f"{live.base}/Organization")
        assert anonymous.status_code == 200
        assert "ratelimit" not in anonymous.headers
        issued = token(live.url, add_client(live.settings))
        assert issued.status_code == 200
        bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        assert httpx.get(f"{live.base}/Organization/none", headers=bearer).status_code == 404
