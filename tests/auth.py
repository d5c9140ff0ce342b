"""Access tokens for tests: a confidential client registered in the test database, and an
`httpx.Auth` that fetches (and renews) a token from the server's real token endpoint."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Generator
from typing import Any

import httpx

from santinel.auth.scopes import parse_scopes
from santinel.cli.store import auth_store, grant_store
from santinel.crypto.secrets import random_token, token_digest
from santinel.services.oauth.keys import load_keyring
from santinel.services.oauth.users import new_user
from santinel.settings import Settings
from santinel.storage.auth_records import ClientRecord

FULL_ACCESS = "system/*.cruds"


def add_client(settings: Settings, record: ClientRecord) -> None:
    """Store `record` in the database `settings` name (what `santinel clients add` does)."""

    async def add() -> None:
        async with auth_store(settings) as store:
            await store.add_client(record)

    asyncio.run(add())


def register_client(
    settings: Settings, scope: str = FULL_ACCESS, tier: str = "internal", **fields: Any
) -> tuple[str, str]:
    """A new client_secret_basic client; (client_id, secret). `fields`: more ClientRecord
    fields (rate limit, contract…)."""
    secret = random_token()
    record = ClientRecord(
        client_id=uuid.uuid4().hex,
        name="tests",
        tier=tier,
        scope=scope,
        auth_method="client_secret_basic",
        secret_digest=token_digest(secret),
        created_us=int(time.time() * 1_000_000),
        **fields,
    )
    add_client(settings, record)
    return record.client_id, secret


def register_public_client(
    settings: Settings, redirect_uris: list[str], scope: str, tier: str = "internal"
) -> str:
    """A public client (browser or mobile app: no secret, PKCE) with its redirect URIs."""
    record = ClientRecord(
        client_id=uuid.uuid4().hex,
        name="Test SMART app",
        tier=tier,
        scope=parse_scopes(scope).text,
        auth_method="none",
        redirect_uris=tuple(redirect_uris),
        created_us=int(time.time() * 1_000_000),
    )
    add_client(settings, record)
    return record.client_id


def register_user(
    settings: Settings,
    username: str,
    password: str,
    fhir_user: str | None = None,
    *,
    totp: bool = False,
) -> str:
    """A user who signs in on the authorization pages; returns the user id."""
    record = new_user(username, password, fhir_user, totp=totp)

    async def add() -> None:
        async with grant_store(settings) as store:
            await store.add_user(record)

    asyncio.run(add())
    return record.user_id


class BearerAuth(httpx.Auth):
    """Adds `Authorization: Bearer …`, getting a new token shortly before the old one expires."""

    def __init__(
        self, token_url: str, client_id: str, secret: str, scope: str = FULL_ACCESS
    ) -> None:
        self.token_url = token_url
        self.credentials = (client_id, secret)
        self.scope = scope
        self._token = ""
        self._expires = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if time.monotonic() > self._expires - 30:
                response = httpx.post(
                    self.token_url,
                    auth=self.credentials,
                    data={"grant_type": "client_credentials", "scope": self.scope},
                )
                response.raise_for_status()
                body = response.json()
                self._token = body["access_token"]
                self._expires = time.monotonic() + body["expires_in"]
            return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # the token is fetched with a (short) blocking call, then cached for every task
        request.headers["Authorization"] = f"Bearer {self.token()}"
        yield request


def mint(server: Any, settings: Settings, scope: str, **context: str) -> str:
    """An access token as the token endpoint issues it, with a launch context."""
    client_id, _ = register_client(settings, scope)

    async def sign() -> str:
        async with auth_store(settings) as store:
            keyring = await load_keyring(store)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": server.url,
            "aud": server.base,
            "sub": client_id,
            "client_id": client_id,
            "scope": parse_scopes(scope).text,
            "tier": "internal",
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 300,
            **context,
        }
        return keyring.sign(claims, "at+jwt")

    return asyncio.run(sign())
