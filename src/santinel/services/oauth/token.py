"""The token endpoint (RFC 6749 §3.2): grants in, signed access tokens out.

- `client_credentials` (SMART Backend Services and confidential clients): the client
  authenticates and gets at most the `system/` scopes it was registered with; no refresh token.
- `authorization_code` and `refresh_token`: the user grants of `grants.py`.
Access tokens are JWTs (RFC 9068, `typ: at+jwt`) for the FHIR base, five minutes long.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from santinel.auth import tiers
from santinel.auth.scopes import ERASE_SCOPE, Scopes, parse_scopes
from santinel.services.oauth import binding, client_auth, grants
from santinel.services.oauth.context import Endpoints, OAuthContext
from santinel.services.oauth.errors import (
    InvalidRequest,
    InvalidScope,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from santinel.services.oauth.issuing import ACCESS_TOKEN_TYPE, issue
from santinel.storage.auth_records import ClientRecord

__all__ = ["ACCESS_TOKEN_TYPE", "GRANT_TYPES", "Endpoints", "issue", "token"]

GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token")


async def token(
    ctx: OAuthContext, form: Mapping[str, str], authorization: str | None
) -> dict[str, Any]:
    match form.get("grant_type"):
        case "client_credentials":
            return await _client_credentials(ctx, form, authorization)
        case "authorization_code":
            return await grants.exchange_code(ctx, form, authorization)
        case "refresh_token":
            return await grants.refresh(ctx, form, authorization)
        case other:
            raise UnsupportedGrantType(f"grant_type '{str(other)[:40]}' is not supported.")


async def _client_credentials(
    ctx: OAuthContext, form: Mapping[str, str], authorization: str | None
) -> dict[str, Any]:
    client = await client_auth.authenticate(
        ctx.clients, form, authorization, ctx.endpoints.token_url
    )
    if client.auth_method == "none":
        raise UnauthorizedClient("Public clients cannot use client_credentials.")
    scopes = _granted(client, form.get("scope", ""))
    purposes = _purposes(client, form.get("purpose_of_use", ""))
    cnf = await binding.confirmation(ctx, client)
    return issue(ctx.keyring, ctx.endpoints, client, scopes, purposes, confirmation=cnf)


def _purposes(client: ClientRecord, requested: str) -> dict[str, str] | None:
    """The `purpose_of_use` claim: codes the client asks for (space-separated, e.g. TREAT),
    all within its contract when it has one (`santinel clients add --purpose`)."""
    contract = frozenset((client.purposes or "").split()) or None
    problem = tiers.requested_purposes_problem(requested, contract)
    if problem is not None:
        raise InvalidRequest(problem)
    asked = " ".join(requested.split())
    return {"purpose_of_use": asked} if asked else None


def _granted(client: ClientRecord, requested: str) -> Scopes:
    allowed = parse_scopes(client.scope)
    asked = parse_scopes(requested) if requested.strip() else allowed
    granted = allowed.narrowed_to(asked)
    system_only = tuple(s for s in granted.resources if s.context == "system")
    if not system_only:
        raise InvalidScope("None of the requested scopes can be granted to this client.")
    # of the other scopes, backend services get only Santinel's admin scope (`$erase`)
    return Scopes(system_only, granted.others & {ERASE_SCOPE})
