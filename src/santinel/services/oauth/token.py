"""The token endpoint (RFC 6749 §3.2): grants in, signed access tokens out.

This part serves `client_credentials` (SMART Backend Services and confidential clients): the
client authenticates, asks for scopes, and gets at most the scopes it was registered with.
Access tokens are JWTs (RFC 9068, `typ: at+jwt`) for the FHIR base, five minutes long.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from santinel.auth.scopes import Scopes, parse_scopes
from santinel.crypto.jwt import KeyRing
from santinel.services.oauth import client_auth
from santinel.services.oauth.errors import InvalidScope, UnauthorizedClient, UnsupportedGrantType
from santinel.services.oauth.keys import ACCESS_TOKEN_SECONDS
from santinel.storage.auth_records import ClientRecord
from santinel.storage.sql.auth_store import SqlAuthStore

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JWT type (RFC 9068), not a secret


@dataclass(frozen=True)
class Endpoints:
    """Where this server is, as clients see it (from settings or the request)."""

    issuer: str  # e.g. https://santinel.example
    fhir_base: str  # the audience of access tokens

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/oauth/token"


async def token(
    store: SqlAuthStore,
    keyring: KeyRing,
    endpoints: Endpoints,
    form: Mapping[str, str],
    authorization: str | None,
) -> dict[str, Any]:
    grant_type = form.get("grant_type")
    if grant_type != "client_credentials":
        raise UnsupportedGrantType(f"grant_type '{str(grant_type)[:40]}' is not supported.")
    client = await client_auth.authenticate(store, form, authorization, endpoints.token_url)
    if client.auth_method == "none":
        raise UnauthorizedClient("Public clients cannot use client_credentials.")
    granted = _granted(client, form.get("scope", ""))
    return issue(keyring, endpoints, client, granted)


def _granted(client: ClientRecord, requested: str) -> Scopes:
    allowed = parse_scopes(client.scope)
    asked = parse_scopes(requested) if requested.strip() else allowed
    granted = allowed.narrowed_to(asked)
    system_only = tuple(s for s in granted.resources if s.context == "system")
    if not system_only:
        raise InvalidScope("None of the requested scopes can be granted to this client.")
    return Scopes(system_only, frozenset())


def issue(
    keyring: KeyRing,
    endpoints: Endpoints,
    client: ClientRecord,
    scopes: Scopes,
    context: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": endpoints.issuer,
        "aud": endpoints.fhir_base,
        "sub": client.client_id,
        "client_id": client.client_id,
        "scope": scopes.text,
        "tier": client.tier,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + ACCESS_TOKEN_SECONDS,
        **(context or {}),
    }
    return {
        "access_token": keyring.sign(claims, ACCESS_TOKEN_TYPE),
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "scope": scopes.text,
        **{k: v for k, v in (context or {}).items() if k in ("patient", "encounter")},
    }
