"""The token endpoint's user grants: `authorization_code` (with PKCE) and `refresh_token`.

- A code is single-use: a second exchange revokes the grant and everything the first issued
  (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3).
- Refresh tokens are opaque, hashed at rest, bound to their client and rotated on every use; a
  used one presented again revokes the whole grant (OAuth 2.1 §6.1, refresh token reuse
  detection). A refresh may only narrow the granted scopes.
- Tokens are sender-constrained as `binding` decides (mTLS certificate, DPoP key); the proof is
  checked before the code or refresh token is used, and a public client's refresh tokens stay
  bound to the DPoP key of its code exchange (RFC 9449 §5).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from santinel.auth import pkce
from santinel.auth.scopes import Scopes, parse_scopes
from santinel.crypto.secrets import random_token, token_digest
from santinel.services.oauth import binding, client_auth
from santinel.services.oauth.context import OAuthContext, now_us
from santinel.services.oauth.errors import InvalidClient, InvalidGrant, InvalidScope
from santinel.services.oauth.issuing import id_token, issue
from santinel.services.oauth.keys import ACCESS_TOKEN_SECONDS
from santinel.storage.auth_records import ClientRecord, GrantRecord, RefreshRecord

OFFLINE_REFRESH_SECONDS = 90 * 24 * 3600
ONLINE_REFRESH_SECONDS = 12 * 3600
INVALID_CODE = "The authorization code is invalid, expired or already used."
INVALID_REFRESH = "The refresh token is invalid, expired or revoked."


@dataclass(frozen=True)
class GrantContext:
    """What a user's approval carries into every token of the grant (stored as JSON)."""

    patient: str | None = None
    encounter: str | None = None
    fhir_user: str | None = None
    auth_time: int = 0
    dpop_jkt: str | None = None  # a public client's refresh tokens are bound to this DPoP key

    def to_json(self) -> str:
        return orjson.dumps(self.__dict__).decode()

    @classmethod
    def from_json(cls, text: str) -> GrantContext:
        data = orjson.loads(text)
        return cls(
            patient=data.get("patient"),
            encounter=data.get("encounter"),
            fhir_user=data.get("fhir_user"),
            auth_time=int(data.get("auth_time") or 0),
            dpop_jkt=data.get("dpop_jkt"),
        )


async def exchange_code(
    ctx: OAuthContext, form: Mapping[str, str], authorization: str | None
) -> dict[str, Any]:
    client = await authenticate_client(ctx, form, authorization)
    cnf = await binding.confirmation(ctx, client)
    code, replayed = await ctx.grants.use_code(token_digest(form.get("code", "")))
    if code is None:
        raise InvalidGrant(INVALID_CODE)
    if replayed:
        await ctx.grants.revoke_grant(code.grant_id, now_us())
        raise InvalidGrant(INVALID_CODE)
    if code.client_id != client.client_id or code.expires_us < now_us():
        raise InvalidGrant(INVALID_CODE)
    if form.get("redirect_uri") != code.redirect_uri:
        raise InvalidGrant("redirect_uri differs from the one of the authorization request.")
    if not pkce.verifies(form.get("code_verifier"), code.code_challenge):
        raise InvalidGrant("The PKCE code_verifier does not match the code_challenge.")
    grant = await _live_grant(ctx, code.grant_id, INVALID_CODE)
    if (jkt := binding.binds_refresh(client, cnf)) is not None:
        await _bind(ctx, grant, GrantContext.from_json(grant.context), jkt)
    scopes = parse_scopes(grant.scope)
    return await _tokens(ctx, client, grant, scopes, code.nonce, confirmation=cnf)


async def refresh(
    ctx: OAuthContext, form: Mapping[str, str], authorization: str | None
) -> dict[str, Any]:
    digest = token_digest(form.get("refresh_token", ""))
    known = await ctx.grants.refresh(digest)
    # RFC 6749 §6: only confidential clients must authenticate to refresh; a public client
    # (the JavaScript SMART client) may send the refresh token alone.
    client = await authenticate_client(
        ctx, form, authorization, known.client_id if known is not None else None
    )
    # Another client's token is refused before it is touched, so it cannot burn it.
    if known is None or known.client_id != client.client_id or known.expires_us < now_us():
        raise InvalidGrant(INVALID_REFRESH)
    cnf = await binding.confirmation(ctx, client)
    if client.auth_method == "none":
        await _check_binding(ctx, known.grant_id, client, cnf)
    record, replayed = await ctx.grants.use_refresh(digest)
    if record is None or replayed:
        await ctx.grants.revoke_grant(known.grant_id, now_us())
        raise InvalidGrant(INVALID_REFRESH)
    grant = await _live_grant(ctx, record.grant_id, INVALID_REFRESH)
    granted = parse_scopes(record.scope)
    asked = form.get("scope", "")
    scopes = granted.narrowed_to(parse_scopes(asked)) if asked.strip() else granted
    if not scopes.resources and not scopes.others:
        raise InvalidScope("A refresh may only narrow the granted scopes.")
    return await _tokens(
        ctx, client, grant, scopes, None, refresh_scope=record.scope, confirmation=cnf
    )


async def authenticate_client(
    ctx: OAuthContext,
    form: Mapping[str, str],
    authorization: str | None,
    implied_client_id: str | None = None,
) -> ClientRecord:
    """A confidential client authenticates; a public one names itself with `client_id`, or
    is the client `implied_client_id` names (the owner of the refresh token it presents)."""
    presented = authorization or form.get("client_secret") or form.get("client_assertion")
    if presented:
        return await client_auth.authenticate(
            ctx.clients, form, authorization, ctx.endpoints.token_url
        )
    client = await ctx.clients.client(form.get("client_id") or implied_client_id or "")
    if client is None or client.disabled or client.auth_method != "none":
        raise InvalidClient("Client authentication failed.")
    return client


async def _check_binding(
    ctx: OAuthContext, grant_id: str, client: ClientRecord, cnf: binding.Confirmation
) -> None:
    """A public client's refresh proves the DPoP key its grant is bound to; the first one made
    with DPoP binds a grant that was not (RFC 9449 §5). Checked before the token is used."""
    grant = await ctx.grants.grant(grant_id)
    if grant is None:
        return  # refused once the refresh token is looked at
    context = GrantContext.from_json(grant.context)
    if not binding.proves(context.dpop_jkt, cnf):
        raise InvalidGrant(INVALID_REFRESH)
    if context.dpop_jkt is None and (jkt := binding.binds_refresh(client, cnf)) is not None:
        await _bind(ctx, grant, context, jkt)


async def _bind(ctx: OAuthContext, grant: GrantRecord, context: GrantContext, jkt: str) -> None:
    bound = dataclasses.replace(context, dpop_jkt=jkt)
    await ctx.grants.set_grant_context(grant.grant_id, bound.to_json())


async def _live_grant(ctx: OAuthContext, grant_id: str, message: str) -> GrantRecord:
    grant = await ctx.grants.grant(grant_id)
    if grant is None or grant.revoked or grant.expires_us < now_us():
        raise InvalidGrant(message)
    return grant


async def _tokens(
    ctx: OAuthContext,
    client: ClientRecord,
    grant: GrantRecord,
    scopes: Scopes,
    nonce: str | None,
    *,
    refresh_scope: str | None = None,
    confirmation: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    context = GrantContext.from_json(grant.context)
    claims = {"sub": grant.user_id}
    if context.patient:
        claims["patient"] = context.patient
    if context.encounter:
        claims["encounter"] = context.encounter
    if context.fhir_user:
        claims["fhirUser"] = context.fhir_user
    jti = uuid.uuid4().hex
    # recorded before it exists: revoking the grant must reach every token it ever issued
    await ctx.grants.record_access_token(
        jti, grant.grant_id, now_us() + ACCESS_TOKEN_SECONDS * 1_000_000
    )
    response = issue(
        ctx.keyring, ctx.endpoints, client, scopes, claims, jti=jti, confirmation=confirmation
    )
    if "openid" in scopes.others:
        shown_user = context.fhir_user if "fhirUser" in scopes.others else None
        response["id_token"] = id_token(
            ctx.keyring,
            ctx.endpoints,
            client.client_id,
            grant.user_id,
            shown_user,
            nonce,
            context.auth_time,
        )
    # a refresh that narrows this access token keeps the grant's own refresh rights
    lifetime = _refresh_lifetime(parse_scopes(refresh_scope) if refresh_scope else scopes)
    if lifetime is not None:
        token = random_token()
        expires = min(grant.expires_us, now_us() + lifetime * 1_000_000)
        await ctx.grants.add_refresh(
            RefreshRecord(
                token_digest(token),
                grant.grant_id,
                client.client_id,
                refresh_scope or scopes.text,
                expires,
            )
        )
        response["refresh_token"] = token
    return response


def _refresh_lifetime(scopes: Scopes) -> int | None:
    if "offline_access" in scopes.others:
        return OFFLINE_REFRESH_SECONDS
    if "online_access" in scopes.others:
        return ONLINE_REFRESH_SECONDS
    return None
