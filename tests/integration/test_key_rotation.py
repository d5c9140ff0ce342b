"""A key rotated through the store (`santinel keys rotate`, another node) reaches running servers
without a restart: two Containers on one database stand for two nodes."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from santinel.crypto.jwt import InvalidToken, KeyRing, Verifier, read_header
from santinel.errors import Unauthorized
from santinel.services.container import Container
from santinel.services.oauth.keys import rotate
from santinel.settings import Settings
from santinel.storage.auth_records import ClientRecord
from tests.services import backend_settings

ISSUER = "https://santinel.test"
AUDIENCE = "https://santinel.test/fhir"


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with backend_settings(request.param, tmp_path / "data") as settings:
        yield settings


def claims(client_id: str = "c1", lifetime: int = 300) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": client_id,
        "client_id": client_id,
        "scope": "system/*.rs",
        "tier": "internal",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + lifetime,
    }


def verifier(ring: KeyRing) -> Verifier:
    return Verifier(ring, ISSUER, AUDIENCE, "at+jwt")


def kids(ring: KeyRing) -> set[str]:
    """The access-token (ECDSA) keys in the JWKS; the RSA id_token key rotates on its own."""
    return {k["kid"] for k in ring.jwks()["keys"] if k["kty"] == "EC"}


async def eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the timeout"
        await asyncio.sleep(0.02)


def test_a_rotation_reaches_the_other_node_and_the_old_key_retires(settings: Settings) -> None:
    async def run() -> None:
        a = await Container.open(settings, key_refresh_seconds=0.1)
        b = await Container.open(settings, key_refresh_seconds=0.1)
        try:
            old = b.keyring.current.kid
            assert a.keyring.current.kid == old
            old_token = b.keyring.sign(claims(), "at+jwt")
            ring_before = b.keyring
            new = await rotate(a.auth_store, retire_in_seconds=3)  # what the CLI does
            await eventually(lambda: b.keyring.current.kid == new == a.keyring.current.kid)
            assert b.keyring is ring_before is b.authenticator.keyring  # mutated in place
            assert read_header(b.keyring.sign(claims(), "at+jwt"))["kid"] == new
            assert verifier(b.keyring).verify(old_token)["jti"]  # until it retires
            assert kids(b.keyring) == {old, new}
            retire_after = next(k.retire_after for k in b.keyring.keys if k.kid == old)
            assert retire_after is not None
            await eventually(lambda: time.time() >= retire_after + 1)
            assert kids(b.keyring) == kids(a.keyring) == {new}
            with pytest.raises(InvalidToken):
                verifier(b.keyring).verify(old_token)
        finally:
            await a.close()
            await b.close()

    asyncio.run(run())


def test_an_unknown_kid_reloads_at_most_once_per_interval(settings: Settings) -> None:
    async def run() -> None:
        a = await Container.open(settings, key_refresh_seconds=3600)
        b = await Container.open(settings, key_refresh_seconds=3600)
        try:
            client = ClientRecord("c1", "test", "internal", "system/*.rs", "client_secret_basic")
            await a.auth_store.add_client(client)
            new = await rotate(a.auth_store)
            await a.key_refresher.reload()
            token = a.keyring.sign(claims(), "at+jwt")
            assert read_header(token)["kid"] == new
            reloads = b.key_refresher.reloads
            with pytest.raises(Unauthorized):  # b has not seen the key yet: it reloads
                await b.authenticator.principal(f"Bearer {token}", ISSUER, AUDIENCE)
            await eventually(lambda: b.key_refresher.reloads == reloads + 1)
            principal = await b.authenticator.principal(f"Bearer {token}", ISSUER, AUDIENCE)
            assert principal.client_id == "c1"
            assert read_header(b.keyring.sign(claims(), "at+jwt"))["kid"] == new

            for n in range(20):  # forged kids within the interval: no more reloads
                with pytest.raises(InvalidToken):
                    verifier(b.keyring).verify(_with_kid(token, f"forged-{n}"))
            assert await b.key_refresher.reload_for("forged-again") is False
            await asyncio.sleep(0.2)
            assert b.key_refresher.reloads == reloads + 1
        finally:
            await a.close()
            await b.close()

    asyncio.run(run())


def _with_kid(token: str, kid: str) -> str:
    header, body, signature = token.split(".")
    head = json.loads(base64.urlsafe_b64decode(header + "=="))
    encoded = base64.urlsafe_b64encode(json.dumps({**head, "kid": kid}).encode()).rstrip(b"=")
    return f"{encoded.decode()}.{body}.{signature}"


def test_reload_for_a_kid_rotated_elsewhere(settings: Settings) -> None:
    """For async verifiers: `reload_for` awaits the reload, so the first token already passes."""

    async def run() -> None:
        a = await Container.open(settings, key_refresh_seconds=3600)
        b = await Container.open(settings, key_refresh_seconds=3600)
        try:
            new = await rotate(a.auth_store)
            assert await b.key_refresher.reload_for(new) is True
            assert b.keyring.current.kid == new
        finally:
            await a.close()
            await b.close()

    asyncio.run(run())
