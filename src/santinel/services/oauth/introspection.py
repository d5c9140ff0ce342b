"""Token introspection (RFC 7662) and revocation (RFC 7009).

Introspection is for confidential clients (resource servers, the client itself): an internal
client may introspect any token, others only their own; every other answer is exactly
`{"active": false}`, whatever the reason. Revocation answers 200 for unknown tokens, and for
tokens of another client (doing nothing), so it is no oracle either.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from santinel.crypto.jwt import InvalidToken, Verifier
from santinel.crypto.secrets import token_digest
from santinel.services.oauth import client_auth
from santinel.services.oauth.context import OAuthContext, now_us
from santinel.services.oauth.errors import InvalidClient, InvalidRequest
from santinel.services.oauth.grants import authenticate_client
from santinel.services.oauth.issuing import ACCESS_TOKEN_TYPE
from santinel.storage.auth_records import ClientRecord

INACTIVE: dict[str, Any] = {"active": False}
SHOWN_CLAIMS = (
    "scope",
    "client_id",
    "sub",
    "exp",
    "iat",
    "iss",
    "aud",
    "jti",
    "patient",
    "fhirUser",
)


async def introspect(
    ctx: OAuthContext, form: Mapping[str, str], authorization: str | None
) -> dict[str, Any]:
    caller = await client_auth.authenticate(
        ctx.clients, form, authorization, ctx.endpoints.token_url
    )
    if caller.auth_method == "none":
        raise InvalidClient("Client authentication failed.")
    token = _token(form)
    found = await _access_token(ctx, token) or await _refresh_token(ctx, token)
    if found is None or not _may_see(caller, str(found.get("client_id"))):
        return dict(INACTIVE)
    return found


async def revoke(ctx: OAuthContext, form: Mapping[str, str], authorization: str | None) -> None:
    caller = await authenticate_client(ctx, form, authorization)
    token = _token(form)
    refresh = await ctx.grants.refresh(token_digest(token))
    if refresh is not None:
        if refresh.client_id == caller.client_id:
            await ctx.grants.revoke_grant(refresh.grant_id, now_us())
        return
    claims = _verified(ctx, token)
    if claims is not None and claims.get("client_id") == caller.client_id:
        await ctx.grants.revoke_access_token(str(claims["jti"]), int(claims["exp"]) * 1_000_000)


def _token(form: Mapping[str, str]) -> str:
    token = form.get("token")
    if not token:
        raise InvalidRequest("The 'token' parameter is required.")
    return token


def _verified(ctx: OAuthContext, token: str) -> dict[str, Any] | None:
    verifier = Verifier(
        ctx.keyring, ctx.endpoints.issuer, ctx.endpoints.fhir_base, ACCESS_TOKEN_TYPE
    )
    try:
        return verifier.verify(token, int(time.time()))
    except InvalidToken:
        return None


async def _access_token(ctx: OAuthContext, token: str) -> dict[str, Any] | None:
    if token.count(".") != 2:
        return None
    claims = _verified(ctx, token)
    if claims is None or await ctx.clients.is_recorded("revoked", str(claims.get("jti"))):
        return None
    client = await ctx.clients.client(str(claims.get("client_id")))
    if client is None or client.disabled:
        return None
    shown = {k: claims[k] for k in SHOWN_CLAIMS if k in claims}
    # RFC 9449 §6.2 / RFC 8705 §3.2: a resource server learns what the token is bound to
    bound = claims.get("cnf") if isinstance(claims.get("cnf"), dict) else None
    token_type = "DPoP" if bound and "jkt" in bound else "Bearer"
    return {"active": True, "token_type": token_type, **shown, **({"cnf": bound} if bound else {})}


async def _refresh_token(ctx: OAuthContext, token: str) -> dict[str, Any] | None:
    record = await ctx.grants.refresh(token_digest(token))
    if record is None or record.used or record.expires_us < now_us():
        return None
    grant = await ctx.grants.grant(record.grant_id)
    if grant is None or grant.revoked:
        return None
    return {
        "active": True,
        "token_type": "refresh_token",
        "client_id": record.client_id,
        "scope": record.scope,
        "sub": grant.user_id,
        "exp": record.expires_us // 1_000_000,
        "iss": ctx.endpoints.issuer,
    }


def _may_see(caller: ClientRecord, owner: str) -> bool:
    return caller.tier == "internal" or caller.client_id == owner
