"""DPoP proofs (RFC 9449 §4.3): the proof of possession a client sends with each request.

A proof is a JWT signed by the client's key, the public half of which it carries in its
header (`jwk`); the server checks, in the order of §4.3 (the replay cache last, so that a proof
refused for any other reason records nothing):

- exactly one `DPoP` header holding a compact JWS; `typ` = `dpop+jwt`; `alg` one of ALGORITHMS
  (asymmetric only; RSA keys of at least 2048 bits); `jwk` a public key (no private member);
- the signature verifies with that key;
- `htm` = the request's method, `htu` = its URL (scheme and host case-insensitive, default
  port implied, query and fragment ignored), `iat` within the last MAX_AGE_SECONDS (and not
  more than CLOCK_SKEW_SECONDS ahead), a `jti`;
- with an access token: `ath` = base64url(SHA-256(token));
- with nonces on: `nonce` is one this server issued recently (else `use_dpop_nonce`);
- `jti` never seen for this key (the `used_token` table: one replay cache for every node).

The result is the key's RFC 7638 thumbprint (`jkt`), which tokens are bound to (`cnf.jkt`).
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from santinel.crypto.jwt import InvalidToken, read_header
from santinel.services.dpop_nonce import DpopNonces
from santinel.storage.sql.auth_store import SqlAuthStore

PROOF_TYPE = "dpop+jwt"
ALGORITHMS = ("ES256", "ES384", "Ed25519", "PS256", "RS256")
MAX_AGE_SECONDS = 120
CLOCK_SKEW_SECONDS = 30
MAX_JTI_LENGTH = 256
MIN_RSA_BITS = 2048
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
DEFAULT_PORTS = {"http": 80, "https": 443}


class _ProofRegistry(JWSRegistry):
    """joserfc's JWS rules with room for the key a proof carries in its header (an RSA-4096
    `jwk` exceeds the default 512 bytes) and a proof-sized payload."""

    max_header_length = 2048
    max_payload_length = 4096


PROOFS = _ProofRegistry(algorithms=ALGORITHMS)


class DpopError(Exception):
    """The proof is missing or invalid (`invalid_dpop_proof`); the message is for the client."""

    error = "invalid_dpop_proof"


class UseDpopNonce(DpopError):
    """The proof lacks a current server nonce (`use_dpop_nonce`, §8/§9): retry with `nonce`."""

    error = "use_dpop_nonce"

    def __init__(self, description: str, nonce: str) -> None:
        super().__init__(description)
        self.nonce = nonce


@dataclass(frozen=True)
class Proof:
    jkt: str  # RFC 7638 thumbprint of the client's key
    jti: str


def ath(access_token: str) -> str:
    """The `ath` claim for an access token: base64url(SHA-256(token)), unpadded."""
    digest = hashlib.sha256(access_token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class DpopVerifier:
    """Verifies proofs; one per process (its replay cache is the shared store)."""

    def __init__(self, store: SqlAuthStore, nonces: DpopNonces | None) -> None:
        self.store = store
        self.nonces = nonces

    async def verify(
        self,
        proofs: list[str],
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        now: float | None = None,
    ) -> Proof:
        moment = time.time() if now is None else now
        if len(proofs) != 1:
            raise DpopError("Exactly one DPoP proof header is required.")
        key, claims = _verified(proofs[0])
        _check_claims(claims, method, url, access_token, moment)
        if self.nonces is not None and not self.nonces.accepts(claims.get("nonce"), moment):
            raise UseDpopNonce("A DPoP nonce from this server is required.", self.nonces.current())
        jkt = key.thumbprint()
        jti = str(claims["jti"])
        replay_key = hashlib.sha256(f"{jkt}:{jti}".encode()).hexdigest()
        expires_us = int((int(claims["iat"]) + MAX_AGE_SECONDS + CLOCK_SKEW_SECONDS) * 1e6)
        if not await self.store.use_once("dpop", replay_key, expires_us, int(moment * 1e6)):
            raise DpopError("This DPoP proof was already used.")
        return Proof(jkt, jti)


def _verified(proof: str) -> tuple[ECKey | RSAKey | OKPKey, dict[str, Any]]:
    try:
        header = read_header(proof)
    except InvalidToken:
        raise DpopError("The DPoP proof is not a JWS.") from None
    alg = header.get("alg")
    if header.get("typ") != PROOF_TYPE or alg not in ALGORITHMS:
        raise DpopError(f"The DPoP proof needs typ {PROOF_TYPE} and an alg of {ALGORITHMS}.")
    key = _public_key(header.get("jwk"))
    try:
        claims = dict(jwt.decode(proof, key, algorithms=[str(alg)], registry=PROOFS).claims)
    except (JoseError, ValueError, TypeError):
        raise DpopError("The DPoP proof's signature does not verify.") from None
    return key, claims


def _public_key(jwk: object) -> ECKey | RSAKey | OKPKey:
    if not isinstance(jwk, dict) or PRIVATE_MEMBERS & set(jwk):
        raise DpopError("The DPoP proof's jwk must be a public key.")
    if jwk.get("kty") not in ("EC", "RSA", "OKP"):
        raise DpopError("The DPoP proof's jwk must be an asymmetric key.")
    if jwk["kty"] == "RSA" and len(str(jwk.get("n", ""))) * 6 < MIN_RSA_BITS:
        raise DpopError(f"RSA keys must have at least {MIN_RSA_BITS} bits.")
    try:
        key = JWKRegistry.import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError):
        raise DpopError("The DPoP proof's jwk is not a usable key.") from None
    if not isinstance(key, ECKey | RSAKey | OKPKey):
        raise DpopError("The DPoP proof's jwk must be an asymmetric key.")
    return key


def _check_claims(
    claims: dict[str, Any], method: str, url: str, access_token: str | None, now: float
) -> None:
    jti, iat = claims.get("jti"), claims.get("iat")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise DpopError("The DPoP proof needs a jti.")
    if not isinstance(iat, int) or not now - MAX_AGE_SECONDS <= iat <= now + CLOCK_SKEW_SECONDS:
        raise DpopError("The DPoP proof's iat is missing or not recent.")
    if claims.get("htm") != method:
        raise DpopError("The DPoP proof's htm is not this request's method.")
    htu = claims.get("htu")
    if not isinstance(htu, str) or _normal(htu) != _normal(url):
        raise DpopError("The DPoP proof's htu is not this request's URL.")
    if access_token is not None and claims.get("ath") != ath(access_token):
        raise DpopError("The DPoP proof's ath does not match the access token.")


def _normal(url: str) -> tuple[str, str, int | None, str]:
    """RFC 3986 §6.2.2-6.2.3 syntax- and scheme-based normalisation, minus query/fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ("", "", None, url)
    scheme = parts.scheme.lower()
    return (
        scheme,
        (parts.hostname or "").lower(),
        port if port is not None else DEFAULT_PORTS.get(scheme),
        unquote(parts.path) or "/",
    )
