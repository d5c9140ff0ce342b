"""Forged and misused access tokens against the live FHIR API: every one is a 401 with the same
generic answer, nothing of the data leaks, and no key URL in a token header is ever fetched."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from santinel.cli.store import auth_store
from santinel.crypto.jwt import KeyRing
from santinel.services.oauth.keys import load_keyring
from tests.auth import register_client
from tests.jwks_server import JwksServer
from tests.services import LiveServer


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def keyring(server: LiveServer) -> KeyRing:
    async def load() -> KeyRing:
        async with auth_store(server.settings) as store:
            return await load_keyring(store)

    return asyncio.run(load())


@pytest.fixture(scope="module")
def client_id(server: LiveServer) -> str:
    return register_client(server.settings, "system/*.rs")[0]


@pytest.fixture(scope="module")
def attacker_site() -> Iterator[JwksServer]:
    site = JwksServer()
    site.thread.start()
    yield site
    site.httpd.shutdown()


@pytest.fixture(scope="module")
def secret_name(server: LiveServer) -> str:
    """A patient whose name must never appear in an answer to a forged token."""
    name = f"Secret{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.base, auth=server.auth) as http:
        body = {"resourceType": "Patient", "id": "attack-target", "name": [{"family": name}]}
        assert http.put("/Patient/attack-target", json=body).status_code in (200, 201)
    return name


def claims(server: LiveServer, owner: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": server.url,
        "aud": server.base,
        "sub": owner,
        "client_id": owner,
        "scope": "system/*.rs",
        "tier": "internal",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 300,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(payload).encode())
    return f"{head}.{body}.{b64(signature)}"


def assert_refused(server: LiveServer, token: str, secret_name: str) -> None:
    response = httpx.get(
        f"{server.base}/Patient",
        params={"family": secret_name},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.json()["resourceType"] == "OperationOutcome"
    assert secret_name not in response.text
    direct = httpx.get(
        f"{server.base}/Patient/attack-target", headers={"Authorization": f"Bearer {token}"}
    )
    assert direct.status_code == 401
    assert secret_name not in direct.text


def test_a_genuine_token_works(
    server: LiveServer, keyring: KeyRing, client_id: str, secret_name: str
) -> None:
    """The control: the same claims, properly signed, read the patient."""
    token = keyring.sign(claims(server, client_id), "at+jwt")
    response = httpx.get(
        f"{server.base}/Patient/attack-target", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert secret_name in response.text


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none(server: LiveServer, client_id: str, secret_name: str, alg: str) -> None:
    token = unsigned({"alg": alg, "typ": "at+jwt"}, claims(server, client_id))
    assert_refused(server, token, secret_name)


def test_hs256_signed_with_our_public_key(
    server: LiveServer, keyring: KeyRing, client_id: str, secret_name: str
) -> None:
    key = keyring.current
    public_pem = key.key.as_pem(private=False)
    header = {"alg": "HS256", "kid": key.kid, "typ": "at+jwt"}
    signing_input = unsigned(header, claims(server, client_id)).rsplit(".", 1)[0]
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert_refused(server, f"{signing_input}.{b64(signature)}", secret_name)


@pytest.mark.parametrize(
    "kid",
    ["unknown-kid", "../../../../etc/passwd", "' OR '1'='1", "k-1; DROP TABLE signing_key --", ""],
)
def test_unknown_or_injected_kid(
    server: LiveServer, client_id: str, secret_name: str, kid: str
) -> None:
    attacker = ECKey.generate_key("P-256")
    header = {"alg": "ES256", "kid": kid, "typ": "at+jwt"}
    token = jwt.encode(header, claims(server, client_id), attacker, algorithms=["ES256"])
    assert_refused(server, token, secret_name)
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # still standing


@pytest.mark.parametrize("location", ["jku", "x5u", "jwk"])
def test_key_location_headers_are_never_followed(
    server: LiveServer,
    client_id: str,
    secret_name: str,
    attacker_site: JwksServer,
    location: str,
) -> None:
    attacker = ECKey.generate_key("P-256", parameters={"kid": "evil"})
    path = f"/{location}-{uuid.uuid4().hex[:6]}"
    url = attacker_site.serve_keys(path, attacker)
    header: dict[str, Any] = {"alg": "ES256", "kid": "evil", "typ": "at+jwt"}
    header[location] = attacker.as_dict(private=False) if location == "jwk" else url
    token = jwt.encode(header, claims(server, client_id), attacker, algorithms=["ES256"])
    assert_refused(server, token, secret_name)
    assert attacker_site.hits[path] == 0  # no outbound request


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": int(time.time()) - 60},
        {"nbf": int(time.time()) + 3600},
        {"iat": int(time.time()) + 3600},
        {"exp": None},
        {"iss": "https://evil.example"},
        {"aud": "https://other.example/fhir"},
        {"aud": None},
        {"client_id": "no-such-client", "sub": "no-such-client"},
    ],
    ids=["expired", "nbf-future", "iat-future", "no-exp", "iss", "aud", "no-aud", "no-client"],
)
def test_bad_claims(
    server: LiveServer,
    keyring: KeyRing,
    client_id: str,
    secret_name: str,
    changes: dict[str, Any],
) -> None:
    token = keyring.sign(claims(server, client_id, **changes), "at+jwt")
    assert_refused(server, token, secret_name)


@pytest.mark.parametrize("typ", ["JWT", "id_token", "jwt", "AT+JWT+x"])
def test_other_token_types_are_not_access_tokens(
    server: LiveServer, keyring: KeyRing, client_id: str, secret_name: str, typ: str
) -> None:
    """An id_token, or a client assertion replayed at the FHIR API, is not an access token."""
    token = keyring.sign(claims(server, client_id), typ)
    assert_refused(server, token, secret_name)


def test_a_client_assertion_is_not_an_access_token(
    server: LiveServer, client_id: str, secret_name: str
) -> None:
    attacker = ECKey.generate_key("P-384", parameters={"kid": "c1"})
    assertion = claims(server, client_id, aud=f"{server.url}/oauth/token", iss=client_id)
    token = jwt.encode({"alg": "ES384", "kid": "c1"}, assertion, attacker, algorithms=["ES384"])
    assert_refused(server, token, secret_name)


def test_a_tampered_payload(
    server: LiveServer, keyring: KeyRing, client_id: str, secret_name: str
) -> None:
    header, _, signature = keyring.sign(claims(server, client_id), "at+jwt").split(".")
    escalated = b64(json.dumps(claims(server, client_id, scope="system/*.cruds")).encode())
    assert_refused(server, f"{header}.{escalated}.{signature}", secret_name)


def test_an_id_token_signed_by_us_is_refused(
    server: LiveServer, keyring: KeyRing, client_id: str, secret_name: str
) -> None:
    """Signed with our RSA id_token key and otherwise perfect claims: still not accepted."""
    token = keyring.sign(claims(server, client_id), "at+jwt", family="RS")
    assert_refused(server, token, secret_name)


@pytest.mark.parametrize(
    "authorization",
    ["Bearer", "Basic dXNlcjpwYXNz", "bearer.x.y", "Bearer a b", "Token abc"],
)
def test_malformed_authorization_headers(
    server: LiveServer, secret_name: str, authorization: str
) -> None:
    response = httpx.get(f"{server.base}/Patient", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert secret_name not in response.text
