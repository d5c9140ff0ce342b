"""Access-token signing and verification refuse every known JWT attack (one test per attack)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from santinel.crypto.jwt import InvalidToken, KeyRing, SigningKey, Verifier

ISSUER = "https://santinel.test"
AUDIENCE = "https://santinel.test/fhir"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    return f"{head}.{body}.{b64(signature)}"


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing([SigningKey.generate("k1")])


@pytest.fixture(scope="module")
def verifier(ring: KeyRing) -> Verifier:
    return Verifier(ring, ISSUER, AUDIENCE, "at+jwt")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "c1",
        "exp": now + 300,
        "iat": now,
        "jti": "j1",
        **overrides,
    }


def test_a_token_we_signed_verifies(ring: KeyRing, verifier: Verifier) -> None:
    assert verifier.verify(ring.sign(claims(), "at+jwt"))["sub"] == "c1"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_in_any_case_is_refused(verifier: Verifier, alg: str) -> None:
    with pytest.raises(InvalidToken):
        verifier.verify(forge({"alg": alg, "typ": "at+jwt", "kid": "k1"}, claims()))


def test_hs256_signed_with_our_public_key_is_refused(ring: KeyRing, verifier: Verifier) -> None:
    public = json.dumps(ring.jwks()["keys"][0]).encode()
    header = {"alg": "HS256", "typ": "at+jwt", "kid": "k1"}
    unsigned = forge(header, claims()).rsplit(".", 1)[0]
    signature = hmac.new(public, unsigned.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken):
        verifier.verify(f"{unsigned}.{b64(signature)}")


@pytest.mark.parametrize("kid", ["unknown", "../../etc/passwd", "k1' OR '1'='1", ""])
def test_unknown_or_injected_kid_is_refused(ring: KeyRing, verifier: Verifier, kid: str) -> None:
    token = ring.sign(claims(), "at+jwt")
    header, body, signature = token.split(".")
    head = json.loads(base64.urlsafe_b64decode(header + "=="))
    with pytest.raises(InvalidToken):
        verifier.verify(f"{b64(json.dumps({**head, 'kid': kid}).encode())}.{body}.{signature}")


@pytest.mark.parametrize(
    "extra",
    [{"jku": "https://evil.test/jwks"}, {"x5u": "https://evil.test/c"}, {"jwk": {"kty": "EC"}}],
)
def test_key_location_headers_are_refused(
    ring: KeyRing, verifier: Verifier, extra: dict[str, Any]
) -> None:
    token = ring.sign(claims(), "at+jwt")
    header, body, signature = token.split(".")
    head = json.loads(base64.urlsafe_b64decode(header + "=="))
    with pytest.raises(InvalidToken):
        verifier.verify(f"{b64(json.dumps({**head, **extra}).encode())}.{body}.{signature}")


@pytest.mark.parametrize(
    "bad",
    [
        {"exp": int(time.time()) - 3600},
        {"nbf": int(time.time()) + 3600},
        {"iss": "https://other.test"},
        {"aud": "https://other.test/fhir"},
        {"exp": None},
    ],
    ids=["expired", "not-yet-valid", "wrong-iss", "wrong-aud", "no-exp"],
)
def test_bad_claims_are_refused(ring: KeyRing, verifier: Verifier, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        verifier.verify(ring.sign(claims(**bad), "at+jwt"))


def test_wrong_typ_is_refused(ring: KeyRing, verifier: Verifier) -> None:
    with pytest.raises(InvalidToken):
        verifier.verify(ring.sign(claims(), "JWT"))


def test_tampered_payload_is_refused(ring: KeyRing, verifier: Verifier) -> None:
    header, _, signature = ring.sign(claims(), "at+jwt").split(".")
    body = b64(json.dumps(claims(sub="admin")).encode())
    with pytest.raises(InvalidToken):
        verifier.verify(f"{header}.{body}.{signature}")


def test_rotation_keeps_old_tokens_valid_until_the_key_retires() -> None:
    ring = KeyRing([SigningKey.generate("old")])
    old_token = ring.sign(claims(), "at+jwt")
    ring.keys.append(SigningKey.generate("new"))
    ring.keys[1] = SigningKey(
        **{**ring.keys[1].__dict__, "created_at": ring.keys[0].created_at + 1}
    )
    verifier = Verifier(ring, ISSUER, AUDIENCE, "at+jwt")
    assert verifier.verify(old_token)["sub"] == "c1"
    assert ring.current.kid == "new"
    assert {k["kid"] for k in ring.jwks()["keys"]} == {"old", "new"}
    ring.keys[0] = SigningKey(**{**ring.keys[0].__dict__, "retire_after": int(time.time()) - 1})
    with pytest.raises(InvalidToken):
        verifier.verify(old_token)
