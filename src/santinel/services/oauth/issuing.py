"""Signed access tokens (RFC 9068 JWTs for the FHIR base) and OIDC id_tokens."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from santinel.auth.scopes import Scopes
from santinel.crypto.jwt import KeyRing
from santinel.services.oauth.context import Endpoints
from santinel.services.oauth.keys import ACCESS_TOKEN_SECONDS
from santinel.storage.auth_records import ClientRecord

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JWT type (RFC 9068), not a secret
ID_TOKEN_TYPE = "JWT"  # noqa: S105 - a JWT type, not a secret
ID_TOKEN_SECONDS = 300
# Launch context returned beside the token (SMART App Launch 2 §Launch context arrives with
# the access token).
RESPONSE_CONTEXT = ("patient", "encounter")


def issue(
    keyring: KeyRing,
    endpoints: Endpoints,
    client: ClientRecord,
    scopes: Scopes,
    context: Mapping[str, str] | None = None,
    *,
    jti: str | None = None,
    confirmation: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A token response for `client`; `context` adds claims such as patient, fhirUser, sub;
    `confirmation` binds the token to a DPoP key (`jkt`, RFC 9449: token type `DPoP`) and/or a
    client certificate (`x5t#S256`, RFC 8705) as its `cnf` claim (RFC 7800)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": endpoints.issuer,
        "aud": endpoints.fhir_base,
        "sub": client.client_id,
        "client_id": client.client_id,
        "scope": scopes.text,
        "tier": client.tier,
        "jti": jti or uuid.uuid4().hex,
        "iat": now,
        "exp": now + ACCESS_TOKEN_SECONDS,
        **(context or {}),
    }
    if confirmation:
        claims["cnf"] = dict(confirmation)
    return {
        "access_token": keyring.sign(claims, ACCESS_TOKEN_TYPE),
        "token_type": "DPoP" if confirmation and "jkt" in confirmation else "Bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "scope": scopes.text,
        **{k: v for k, v in (context or {}).items() if k in RESPONSE_CONTEXT},
    }


def id_token(
    keyring: KeyRing,
    endpoints: Endpoints,
    client_id: str,
    user_id: str,
    fhir_user: str | None,
    nonce: str | None,
    auth_time: int,
) -> str:
    """An OpenID Connect id_token; `fhirUser` (SMART) is the absolute URL of the user's
    resource, given only when the `fhirUser` scope was granted (the caller decides)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": endpoints.issuer,
        "sub": user_id,
        "aud": client_id,
        "iat": now,
        "exp": now + ID_TOKEN_SECONDS,
        "auth_time": auth_time,
    }
    if nonce:
        claims["nonce"] = nonce
    if fhir_user:
        claims["fhirUser"] = f"{endpoints.fhir_base}/{fhir_user}"
    return keyring.sign(claims, ID_TOKEN_TYPE, family="RS")
