"""The token endpoint (client_credentials) and SMART discovery, over real HTTP on both backends."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from santinel.crypto.jwt import KeyRing, SigningKey, Verifier
from santinel.crypto.secrets import random_token, token_digest
from santinel.settings import Settings
from santinel.storage.auth_records import ClientRecord
from tests.services import LiveServer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


async def _register(settings: Settings, record: ClientRecord) -> None:
    from santinel.cli.store import auth_store

    async with auth_store(settings) as store:
        await store.add_client(record)


def register(settings: Settings, **fields: Any) -> ClientRecord:
    record = ClientRecord(
        client_id=uuid.uuid4().hex,
        name="test",
        tier="internal",
        scope="system/*.rs system/Patient.cruds",
        created_us=int(time.time() * 1e6),
        **{"auth_method": "client_secret_basic", **fields},
    )
    asyncio.run(_register(settings, record))
    return record


@pytest.fixture
def secret_client(backend_settings: Settings) -> tuple[ClientRecord, str]:
    secret = random_token()
    return register(backend_settings, secret_digest=token_digest(secret)), secret


def token_url(server: LiveServer) -> str:
    return f"{server.url}/oauth/token"


def test_smart_configuration_and_jwks(server: LiveServer) -> None:
    config = httpx.get(
        f"{server.base}/.well-known/smart-configuration", headers={"Accept": "text/html"}
    )
    assert config.status_code == 200
    body = config.json()
    assert body["token_endpoint"] == token_url(server)
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert "private_key_jwt" in body["token_endpoint_auth_methods_supported"]
    keys = httpx.get(body["jwks_uri"]).json()["keys"]
    assert keys
    assert all("d" not in k for k in keys)


def test_client_secret_basic_gets_a_verifiable_token(
    server: LiveServer, secret_client: tuple[ClientRecord, str]
) -> None:
    client, secret = secret_client
    response = httpx.post(
        token_url(server),
        data={"grant_type": "client_credentials", "scope": "system/Patient.rs"},
        auth=(client.client_id, secret),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "system/Patient.rs"
    assert response.headers["cache-control"] == "no-store"
    jwks = httpx.get(f"{server.url}/.well-known/jwks.json").json()
    ring = KeyRing(
        [
            SigningKey(k["kid"], k["alg"], ECKey.import_key(k), 0)
            for k in jwks["keys"]
            if k["kty"] == "EC"
        ]
    )
    claims = Verifier(ring, server.url, server.base, "at+jwt").verify(body["access_token"])
    assert claims["client_id"] == client.client_id
    assert claims["tier"] == "internal"


def test_client_secret_post_works_and_scopes_are_narrowed(
    server: LiveServer, secret_client: tuple[ClientRecord, str]
) -> None:
    client, secret = secret_client
    response = httpx.post(
        token_url(server),
        data={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": secret,
            "scope": "system/Patient.rs system/Observation.cud",
        },
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "system/Patient.rs"


def test_wrong_secret_and_unknown_client_get_the_same_answer(
    server: LiveServer, secret_client: tuple[ClientRecord, str]
) -> None:
    client, _ = secret_client
    form = {"grant_type": "client_credentials"}
    wrong = httpx.post(token_url(server), data=form, auth=(client.client_id, "wrong"))
    unknown = httpx.post(token_url(server), data=form, auth=("no-such-client", "wrong"))
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {"error": "invalid_client", "error_description": "Client authentication failed."}
    )


def test_scopes_outside_the_registration_are_refused(
    server: LiveServer, secret_client: tuple[ClientRecord, str]
) -> None:
    client, secret = secret_client
    response = httpx.post(
        token_url(server),
        data={"grant_type": "client_credentials", "scope": "system/Observation.d"},
        auth=(client.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_unsupported_grant_and_bad_requests(
    server: LiveServer, secret_client: tuple[ClientRecord, str]
) -> None:
    client, secret = secret_client
    assert (
        httpx.post(
            token_url(server), data={"grant_type": "password"}, auth=(client.client_id, secret)
        ).json()["error"]
        == "unsupported_grant_type"
    )
    as_json = httpx.post(token_url(server), json={"grant_type": "client_credentials"})
    assert as_json.json()["error"] == "invalid_request"
    repeated = httpx.post(
        token_url(server),
        content="grant_type=client_credentials&grant_type=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert repeated.json()["error"] == "invalid_request"


def assertion(key: Any, alg: str, client_id: str, audience: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
        **overrides,
    }
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[alg])


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_private_key_jwt_backend_services(
    server: LiveServer, backend_settings: Settings, alg: str
) -> None:
    import json

    key = (
        ECKey.generate_key("P-384", parameters={"kid": "c1"})
        if alg == "ES384"
        else RSAKey.generate_key(2048, parameters={"kid": "c1"})
    )
    jwks = json.dumps({"keys": [key.as_dict(private=False)]})
    client = register(backend_settings, auth_method="private_key_jwt", jwks=jwks)
    signed = assertion(key, alg, client.client_id, token_url(server))
    form = {
        "grant_type": "client_credentials",
        "scope": "system/*.rs",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
    }
    first = httpx.post(token_url(server), data=form)
    assert first.status_code == 200, first.text
    replay = httpx.post(token_url(server), data=form)
    assert replay.status_code == 401
    for bad in (
        {"aud": f"{server.url}/other"},
        {"exp": int(time.time()) + 3600},
        {"sub": "someone-else"},
        {"exp": int(time.time()) - 600},
    ):
        form["client_assertion"] = assertion(key, alg, client.client_id, token_url(server), **bad)
        assert httpx.post(token_url(server), data=form).status_code == 401, bad
    other = ECKey.generate_key("P-384", parameters={"kid": "c1"})
    form["client_assertion"] = assertion(other, "ES384", client.client_id, token_url(server))
    assert httpx.post(token_url(server), data=form).status_code == 401
