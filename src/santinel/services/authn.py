"""Bearer-token authentication (RFC 6750): access token in, `Principal` out.

Verified tokens are cached by their SHA-256 until they expire (verification is most of the
cost of a secured read). The revocation list and the client's state are checked again at least
every STATE_TTL seconds per token. Every failure is the same `invalid_token` answer.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from santinel.auth.principal import Principal, Tier
from santinel.auth.scopes import parse_scopes
from santinel.crypto.jwt import InvalidToken, KeyRing, Verifier
from santinel.crypto.secrets import token_digest
from santinel.errors import Unauthorized
from santinel.storage.sql.auth_store import SqlAuthStore

CACHE_SIZE = 10_000
STATE_TTL = 2.0  # seconds a revocation or a disabled client may take to apply on this node
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JWT type (RFC 9068), not a secret
TIERS: tuple[Tier, ...] = ("internal", "partner", "public")
CHALLENGE = 'Bearer error="invalid_token"'


def unauthorized(description: str = "A valid access token is required.") -> Unauthorized:
    return Unauthorized(description, headers={"WWW-Authenticate": CHALLENGE})


class Authenticator:
    """Verifies access tokens for this server; one per process, shared by every request."""

    def __init__(self, keyring: KeyRing, store: SqlAuthStore) -> None:
        self.keyring = keyring
        self.store = store
        self._cache: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()
        self._state: OrderedDict[str, tuple[float, bool]] = OrderedDict()

    async def principal(self, authorization: str | None, issuer: str, audience: str) -> Principal:
        """The principal of a `Bearer` access token issued by `issuer` for `audience`."""
        token = _bearer(authorization)
        claims = self._verified(token, Verifier(self.keyring, issuer, audience, ACCESS_TOKEN_TYPE))
        if not await self._still_valid(str(claims.get("jti")), str(claims.get("client_id"))):
            raise unauthorized()
        return to_principal(claims)

    async def _still_valid(self, jti: str, client_id: str) -> bool:
        """Not revoked and the client not disabled; both answers are kept STATE_TTL seconds,
        the longest a revocation or a disabled client takes to reach every request."""
        now = time.monotonic()
        key = f"{client_id} {jti}"
        known = self._state.get(key)
        if known is not None and known[0] > now:
            return known[1]
        revoked = await self.store.is_recorded("revoked", jti)
        client = None if revoked else await self.store.client(client_id)
        valid = client is not None and not client.disabled
        self._state[key] = (now + STATE_TTL, valid)
        while len(self._state) > CACHE_SIZE:
            self._state.popitem(last=False)
        return valid

    def _verified(self, token: str, verifier: Verifier) -> dict[str, Any]:
        key = f"{verifier.audience} {token_digest(token)}"
        now = int(time.time())
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            claims = verifier.verify(token, now)
        except InvalidToken:
            raise unauthorized() from None
        self._cache[key] = (int(claims["exp"]), claims)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return claims


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized()
    return token.strip()


def to_principal(claims: dict[str, Any]) -> Principal:
    tier = claims.get("tier")
    return Principal(
        client_id=str(claims.get("client_id")),
        tier=tier if tier in TIERS else "public",
        scopes=parse_scopes(str(claims.get("scope", ""))),
        patient=claims.get("patient") if isinstance(claims.get("patient"), str) else None,
        fhir_user=claims.get("fhirUser") if isinstance(claims.get("fhirUser"), str) else None,
        user=claims.get("sub") if claims.get("sub") != claims.get("client_id") else None,
        token_id=str(claims.get("jti")),
    )
