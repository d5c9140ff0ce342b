"""Client JWK Sets by URL: fetched from a real local HTTP server, cached, refetched sparingly."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

from santinel.services.oauth.jwks_fetch import JwksFetcher, JwksUnavailable, check_url
from tests.jwks_server import JwksServer, Reply

MARKER = "served-by-the-remote-do-not-echo"


@pytest.fixture
def remote() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server


def key(kid: str) -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": kid})


def kids(key_set: dict[str, object]) -> set[str]:
    keys = key_set["keys"]
    assert isinstance(keys, list)
    return {k["kid"] for k in keys}


def test_a_set_is_fetched_once_and_served_from_the_cache(remote: JwksServer) -> None:
    url = remote.serve_keys("/a", key("k1"))
    fetcher = JwksFetcher()

    async def run() -> None:
        for _ in range(3):
            assert kids(await fetcher.key_set(url, "k1")) == {"k1"}
        assert kids(await fetcher.key_set(url)) == {"k1"}

    asyncio.run(run())
    assert remote.hits["/a"] == 1


def test_concurrent_first_requests_fetch_once(remote: JwksServer) -> None:
    url = remote.serve_keys("/a", key("k1"))
    fetcher = JwksFetcher()

    async def run() -> None:
        sets = await asyncio.gather(*(fetcher.key_set(url, "k1") for _ in range(10)))
        assert all(kids(s) == {"k1"} for s in sets)

    asyncio.run(run())
    assert remote.hits["/a"] == 1


def test_cache_control_is_honoured_between_the_limits(remote: JwksServer) -> None:
    fetcher = JwksFetcher(default_ttl=60, max_ttl=0.4, min_interval=0.2)
    short = remote.serve_keys("/short", key("k1"), headers={"Cache-Control": "max-age=0"})
    long = remote.serve_keys("/long", key("k1"), headers={"Cache-Control": "public, max-age=86400"})
    default = remote.serve_keys("/default", key("k1"))

    async def run() -> None:
        for url in (short, long, default):
            await fetcher.key_set(url)
        await asyncio.sleep(0.25)  # past min_interval: max-age=0 counts as that floor
        for url in (short, long, default):
            await fetcher.key_set(url)
        assert (remote.hits["/short"], remote.hits["/long"], remote.hits["/default"]) == (2, 1, 1)
        await asyncio.sleep(0.2)  # past max_ttl: a day-long max-age is capped
        for url in (long, default):
            await fetcher.key_set(url)

    asyncio.run(run())
    assert (remote.hits["/long"], remote.hits["/default"]) == (2, 1)


def test_an_unknown_kid_refetches_at_most_once_per_interval(remote: JwksServer) -> None:
    url = remote.serve_keys("/a", key("k1"))
    fetcher = JwksFetcher(min_interval=0.5)

    async def run() -> None:
        assert kids(await fetcher.key_set(url, "k1")) == {"k1"}
        remote.serve_keys("/a", key("k1"), key("k2"))  # the client rotates
        assert kids(await fetcher.key_set(url, "k2")) == {"k1", "k2"}
        assert remote.hits["/a"] == 2
        for n in range(20):  # an attacker's random kids: no more requests for a while
            assert "k2" in kids(await fetcher.key_set(url, f"random-{n}"))
        assert remote.hits["/a"] == 2
        await asyncio.sleep(0.55)
        await fetcher.key_set(url, "random-again")
        assert remote.hits["/a"] == 3
        await fetcher.key_set(url, "random-once-more")
        assert remote.hits["/a"] == 3

    asyncio.run(run())


def test_a_first_fetch_without_the_kid_does_not_refetch_at_once(remote: JwksServer) -> None:
    url = remote.serve_keys("/a", key("k1"))

    async def run() -> None:
        assert kids(await JwksFetcher().key_set(url, "not-there")) == {"k1"}

    asyncio.run(run())
    assert remote.hits["/a"] == 1


def _big_set() -> bytes:
    keys = [key("k1").as_dict(private=False)]
    return json.dumps({"keys": keys, "pad": MARKER * 3000}).encode()  # valid, but > 64 KiB


FAILURES = {  # what the server does → the reason we log
    "server-error": (Reply(500, MARKER.encode()), "HTTP status 500"),
    "not-found": (Reply(404, b'{"keys": []}'), "HTTP status 404"),
    "redirect": (Reply(302, b"", {"Location": "/good"}), "HTTP status 302"),
    "not-json": (Reply(200, f"<html>{MARKER}</html>".encode()), "not JSON"),
    "not-a-set": (Reply(200, json.dumps({"keys": MARKER}).encode()), "not a JWK Set"),
    "no-usable-key": (
        Reply(200, json.dumps({"keys": [{"kty": "EC", "kid": MARKER}]}).encode()),
        "no usable key in the JWK Set",
    ),
    "too-large": (Reply(200, _big_set()), "response too large"),
    "too-large-undeclared": (Reply(200, _big_set(), drip=0.0001), "response too large"),
    "too-slow": (Reply(200, b"{}", delay=1.5), "timed out"),
    # Each chunk comes quickly, the whole does not: the budget covers the whole exchange.
    "dripping": (Reply(200, json.dumps({"pad": "x" * 1024}).encode(), drip=0.1), "timed out"),
}


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_failures_raise_a_reason_without_remote_content(remote: JwksServer, kind: str) -> None:
    remote.serve_keys("/good", key("k1"))
    reply, reason = FAILURES[kind]
    url = remote.serve(f"/{kind}", reply)
    fetcher = JwksFetcher(timeout=0.6)
    started = time.monotonic()
    with pytest.raises(JwksUnavailable) as raised:
        asyncio.run(fetcher.key_set(url, "k1"))
    assert time.monotonic() - started < 1.5
    assert str(raised.value) == reason
    assert remote.hits["/good"] == 0  # redirects are not followed


def test_a_failure_is_remembered_for_the_interval(remote: JwksServer) -> None:
    url = remote.serve("/a", Reply(503, b""))
    fetcher = JwksFetcher(min_interval=0.3)

    async def run() -> None:
        for _ in range(3):
            with pytest.raises(JwksUnavailable):
                await fetcher.key_set(url, "k1")
        assert remote.hits["/a"] == 1
        remote.serve_keys("/a", key("k1"))
        await asyncio.sleep(0.35)
        assert kids(await fetcher.key_set(url, "k1")) == {"k1"}
        assert remote.hits["/a"] == 2

    asyncio.run(run())


def test_a_failed_refetch_keeps_the_fresh_set(remote: JwksServer) -> None:
    url = remote.serve_keys("/a", key("k1"))
    fetcher = JwksFetcher(min_interval=0)

    async def run() -> None:
        await fetcher.key_set(url, "k1")
        remote.serve("/a", Reply(500, b""))
        with pytest.raises(JwksUnavailable):
            await fetcher.key_set(url, "k2")
        assert kids(await fetcher.key_set(url, "k1")) == {"k1"}

    asyncio.run(run())
    assert remote.hits["/a"] == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://jwks.example.test/keys",
        "http://10.0.0.1/keys",
        "ftp://127.0.0.1/keys",
        "file:///etc/passwd",
        "https://user:pw@jwks.example.test/keys",
        "https:///keys",
        "not a url",
    ],
)
def test_only_https_or_loopback_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(JwksUnavailable):
        check_url(url)
    with pytest.raises(JwksUnavailable):
        asyncio.run(JwksFetcher().key_set(url))


@pytest.mark.parametrize(
    "url",
    ["https://jwks.example.test/k", "http://127.0.0.1:8/k", "http://localhost/k", "http://[::1]/k"],
)
def test_https_and_loopback_urls_are_allowed(url: str) -> None:
    check_url(url)


def test_clients_add_refuses_a_jwks_url_that_would_never_be_fetched(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from santinel.cli.main import app

    base = ["clients", "add", "--name", "n", "--scope", "system/*.rs"]
    store = ["--data-dir", str(tmp_path)]
    runner = CliRunner()
    refused = runner.invoke(app, [*base, "--jwks-url", "http://jwks.example.test/k", *store])
    assert refused.exit_code == 2
    assert "--jwks-url must be https" in refused.output
    accepted = runner.invoke(app, [*base, "--jwks-url", "https://jwks.example.test/k", *store])
    assert accepted.exit_code == 0, accepted.output
