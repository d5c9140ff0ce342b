"""SMART Backend Services with a JWKS registered by URL: the token endpoint fetches it from a real
local server, caches it, refetches it once for a new kid, and never for an attacker's kids."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from santinel.cli.store import auth_store
from santinel.settings import Settings
from santinel.storage.auth_records import ClientRecord
from tests.jwks_server import JwksServer, Reply
from tests.services import LiveServer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FAILED = {"error": "invalid_client", "error_description": "Client authentication failed."}


@pytest.fixture
def remote() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server


def register(settings: Settings, **fields: Any) -> str:
    record = ClientRecord(
        uuid.uuid4().hex, "test", "internal", "system/*.rs", "private_key_jwt", **fields
    )

    async def add() -> None:
        async with auth_store(settings) as store:
            await store.add_client(record)

    asyncio.run(add())
    return record.client_id


def token_url(server: LiveServer) -> str:
    return f"{server.url}/oauth/token"


def ec(kid: str) -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": kid})


def signed(key: Any, client_id: str, audience: str, alg: str = "ES384", **header: Any) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "exp": now + 240}
    return jwt.encode(
        {"alg": alg, "kid": key.kid, "typ": "JWT", **header},
        {**claims, "jti": uuid.uuid4().hex},
        key,
        algorithms=[alg],
    )


def ask(server: LiveServer, assertion: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "scope": "system/*.rs",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    return httpx.post(token_url(server), data=form)


def by_url(settings: Settings, url: str) -> str:
    return register(settings, jwks_url=url)


def test_a_jwks_url_is_fetched_cached_and_refetched_for_a_new_kid(
    server: LiveServer, backend_settings: Settings, remote: JwksServer
) -> None:
    k1, k2 = ec("k1"), RSAKey.generate_key(2048, parameters={"kid": "k2"})
    url = remote.serve_keys("/jwks", k1)
    client_id = by_url(backend_settings, url)
    audience = token_url(server)
    for _ in range(3):
        response = ask(server, signed(k1, client_id, audience))
        assert response.status_code == 200, response.text
    assert remote.hits["/jwks"] == 1  # cached

    remote.serve_keys("/jwks", k1, k2)  # the client publishes a new key, then uses it
    response = ask(server, signed(k2, client_id, audience, "RS384"))
    assert response.status_code == 200, response.text
    assert remote.hits["/jwks"] == 2  # one refetch for the unknown kid

    for n in range(5):  # an attacker's random kids do not make us fetch again
        response = ask(server, signed(ec(f"random-{n}"), client_id, audience))
        assert response.status_code == 401
        assert response.json() == FAILED
    assert remote.hits["/jwks"] == 2
    assert ask(server, signed(k2, client_id, audience, "RS384")).status_code == 200
    assert remote.hits["/jwks"] == 2


def test_jku_must_be_the_registered_url_and_keys_never_come_from_the_assertion(
    server: LiveServer, backend_settings: Settings, remote: JwksServer
) -> None:
    key, attacker = ec("k1"), ec("k1")
    url = remote.serve_keys("/jwks", key)
    evil = remote.serve_keys("/evil", attacker)
    client_id = by_url(backend_settings, url)
    audience = token_url(server)
    assert ask(server, signed(key, client_id, audience, jku=url)).status_code == 200
    public = attacker.as_dict(private=False)
    for header in (
        {"jku": evil},
        {"jku": url + "/"},
        {"x5u": evil},
        {"jwk": public},
        {"x5c": ["MIIB"]},
    ):
        response = ask(server, signed(attacker, client_id, audience, **header))
        assert (response.status_code, response.json()) == (401, FAILED), header
    assert remote.hits["/evil"] == 0

    by_value = register(backend_settings, jwks=json.dumps({"keys": [key.as_dict(private=False)]}))
    response = ask(server, signed(key, by_value, audience, jku=url))
    assert response.status_code == 401  # no URL registered: no jku at all


@pytest.mark.parametrize(
    "reply",
    [
        Reply(500, b"internal details"),
        Reply(302, b"", {"Location": "/jwks"}),
        Reply(200, b"<html>internal details</html>"),
        Reply(200, json.dumps({"keys": [], "pad": "x" * 70_000}).encode()),
    ],
    ids=["server-error", "redirect", "not-json", "too-large"],
)
def test_a_jwks_url_that_fails_is_invalid_client_and_echoes_nothing(
    server: LiveServer, backend_settings: Settings, remote: JwksServer, reply: Reply
) -> None:
    key = ec("k1")
    remote.serve_keys("/jwks", key)
    bad = remote.serve("/bad", reply)
    client_id = by_url(backend_settings, bad)
    response = ask(server, signed(key, client_id, token_url(server)))
    assert (response.status_code, response.json()) == (401, FAILED)
    assert remote.hits["/jwks"] == 0  # the redirect was not followed
    assert ask(server, signed(key, client_id, token_url(server))).status_code == 401
    assert remote.hits["/bad"] == 1  # the failure is remembered for a while


def test_a_plain_http_jwks_url_off_loopback_is_never_fetched(
    server: LiveServer, backend_settings: Settings
) -> None:
    key = ec("k1")
    client_id = by_url(backend_settings, "http://jwks.example.test/keys")
    response = ask(server, signed(key, client_id, token_url(server)))
    assert (response.status_code, response.json()) == (401, FAILED)


def test_the_assertion_header_is_checked_before_anything_is_fetched(
    server: LiveServer, backend_settings: Settings, remote: JwksServer
) -> None:
    key = ec("k1")
    url = remote.serve_keys("/jwks", key)
    client_id = by_url(backend_settings, url)
    token = signed(key, client_id, token_url(server))
    header, body, signature = token.split(".")
    head = json.loads(base64.urlsafe_b64decode(header + "=="))
    for alg in ("none", "HS256"):
        forged = base64.urlsafe_b64encode(json.dumps({**head, "alg": alg}).encode()).rstrip(b"=")
        response = ask(server, f"{forged.decode()}.{body}.{signature}")
        assert response.status_code == 401
    assert remote.hits["/jwks"] == 0
