"""Bearer-token authentication (RFC 6750): access token in, `Principal` out.

Verifying a token (an ECDSA signature, then its claims) and building its `Principal` is most of
the cost of a secured read, so each token that verified is kept in memory with its `Principal`,
keyed by the token itself and the issuer and audience it was verified for; a request bearing it
again costs one dictionary lookup and two clock reads. A kept token serves only:

- until its `exp`: from then on it is verified again, as an unknown token is (and refused once
  expired, within the verifier's clock-skew allowance);
- for the issuer and audience it was verified for (both are part of the key);
- while the key that signed it still verifies (looked at again whenever the key ring changes);
- while the token is not revoked and its client exists and is not disabled, as read from the
  store less than STATE_TTL seconds before (counted from when the read began).

That state is read once per token however many requests want it at the same time, and read
again shortly before it goes stale (REFRESH_AHEAD) while the still-fresh answer keeps serving,
so a busy token does not stall every STATE_TTL seconds. At most CACHE_SIZE tokens are kept (the
oldest verified go first). Every failure is the same `invalid_token` answer.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from time import monotonic
from time import time as wall_clock
from typing import Any

from santinel.auth.principal import Confirmation, Principal, Tier
from santinel.auth.scopes import parse_scopes
from santinel.crypto.jwt import InvalidToken, KeyRing, SigningKey, Verifier, read_header
from santinel.errors import Unauthorized
from santinel.logging import get_logger
from santinel.storage.sql.auth_store import SqlAuthStore

CACHE_SIZE = 10_000
STATE_TTL = 2.0  # seconds a revocation or a disabled client may take to apply on this node
REFRESH_AHEAD = 0.5  # seconds before STATE_TTL runs out that a request starts the next read
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a JWT type (RFC 9068), not a secret
TIERS: tuple[Tier, ...] = ("internal", "partner", "public")
CHALLENGE = 'Bearer error="invalid_token"'
AUTH_SCHEMES = ("bearer", "dpop")
NEVER = float("-inf")

log = get_logger("santinel.authn")


def unauthorized(description: str = "A valid access token is required.") -> Unauthorized:
    return Unauthorized(description, headers={"WWW-Authenticate": CHALLENGE})


@dataclass(slots=True)
class _Verified:
    """A token that verified, and what it stands for (mutable: the state check updates it)."""

    principal: Principal
    expires: int  # the token's `exp`, epoch seconds
    kid: str  # the signing key it was verified with
    keys: list[SigningKey]  # the key ring's list at that time (`KeyRing` swaps it on reload)
    jti: str
    client_id: str
    checked_until: float = NEVER  # monotonic() until which `valid` may be trusted
    valid: bool = False  # not revoked, client present and enabled (as of the last read)
    checking: asyncio.Task[None] | None = None  # the state read in progress, if any


class Authenticator:
    """Verifies access tokens for this server; one per process, shared by every request."""

    def __init__(self, keyring: KeyRing, store: SqlAuthStore) -> None:
        self.keyring = keyring
        self.store = store
        # (token, issuer, audience) → its verification. The key is the exact token string: it is
        # only ever in memory, and str hashing is keyed per process (no chosen collisions).
        self._tokens: OrderedDict[tuple[str, str, str], _Verified] = OrderedDict()

    async def principal(self, authorization: str | None, issuer: str, audience: str) -> Principal:
        """The principal of a `Bearer` access token issued by `issuer` for `audience`."""
        key = (_bearer(authorization), issuer, audience)
        entry = self._tokens.get(key)
        if (
            entry is None
            or entry.expires <= wall_clock()
            or (entry.keys is not self.keyring.keys and not self._key_still_verifies(entry))
        ):
            entry = self._verify(key)
        now = monotonic()
        if now >= entry.checked_until - REFRESH_AHEAD:
            checking = entry.checking or self._start_state_check(entry)
            if now >= entry.checked_until:  # the last answer is stale: wait for the new one
                await asyncio.shield(checking)
        if not entry.valid:
            raise unauthorized()
        return entry.principal

    def _verify(self, key: tuple[str, str, str]) -> _Verified:
        token, issuer, audience = key
        now = int(wall_clock())
        keys = self.keyring.keys
        try:
            claims = Verifier(self.keyring, issuer, audience, ACCESS_TOKEN_TYPE).verify(token, now)
        except InvalidToken:
            self._tokens.pop(key, None)
            raise unauthorized() from None
        entry = _Verified(
            principal=to_principal(claims),
            expires=int(claims["exp"]),
            kid=str(read_header(token).get("kid")),
            keys=keys,
            jti=str(claims.get("jti")),
            client_id=str(claims.get("client_id")),
        )
        self._tokens[key] = entry
        self._tokens.move_to_end(key)
        while len(self._tokens) > CACHE_SIZE:
            self._tokens.popitem(last=False)
        return entry

    def _key_still_verifies(self, entry: _Verified) -> bool:
        """The ring changed since `entry` was verified: keep it only if its key still verifies."""
        keys = self.keyring.keys
        if any(k.kid == entry.kid for k in self.keyring.verifying(int(wall_clock()))):
            entry.keys = keys
            return True
        return False

    def _start_state_check(self, entry: _Verified) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._check_state(entry))
        entry.checking = task
        task.add_done_callback(_report_failure)
        return task

    async def _check_state(self, entry: _Verified) -> None:
        """Not revoked and the client not disabled; the answer holds STATE_TTL seconds from
        before the store is read, the longest a revocation or a disabled client takes to reach
        every request."""
        started = monotonic()
        try:
            revoked = await self.store.is_recorded("revoked", entry.jti)
            client = None if revoked else await self.store.client(entry.client_id)
            entry.valid = client is not None and not client.disabled
            entry.checked_until = started + STATE_TTL
        finally:
            entry.checking = None


def _report_failure(task: asyncio.Task[None]) -> None:
    """Log a failed state read (also one read ahead that no request waited for). Requests
    waiting for it fail with its error; the next request reads again."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("token state check failed", error=type(error).__name__)


def _bearer(authorization: str | None) -> str:
    """The token of `Bearer <token>` or `DPoP <token>` (RFC 9449 §7.1; whether the scheme
    fits the token's binding is `sender_binding`'s check)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() not in AUTH_SCHEMES or not token.strip():
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
        confirmation=_confirmation(claims.get("cnf")),
        purpose_of_use=tuple(str(claims.get("purpose_of_use") or "").split()),
    )


def _confirmation(cnf: object) -> Confirmation | None:
    """The binding of a sender-constrained token (RFC 7800 `cnf`); None for a plain bearer."""
    if not isinstance(cnf, dict):
        return None
    jkt, x5t = cnf.get("jkt"), cnf.get("x5t#S256")
    return Confirmation(
        jkt=jkt if isinstance(jkt, str) else None,
        x5t_s256=x5t if isinstance(x5t, str) else None,
    )
