"""Sender-constrained access tokens at the resource server: a bound token serves only its
holder.

- `cnf.x5t#S256` (RFC 8705 §3): the request's TLS connection must present the client
  certificate whose SHA-256 thumbprint the token names; otherwise 401 `invalid_token`.
- `cnf.jkt` (RFC 9449 §7): the request must use the `DPoP` authorization scheme and carry a
  valid proof (`services.dpop`) signed by the key the token names, with `ath` = the token's
  hash; otherwise 401 with a `DPoP` challenge (`invalid_token`, `invalid_dpop_proof`, or
  `use_dpop_nonce` with a fresh `DPoP-Nonce`).
- A token that is not DPoP-bound presented with the `DPoP` scheme is refused too: the scheme
  claims a binding the token does not have.

Plain bearer tokens over `Bearer` cost one attribute test here.
"""

from __future__ import annotations

import hmac
import ssl
from dataclasses import dataclass, field

from santinel.auth.principal import Principal
from santinel.crypto.certificates import x5t_s256
from santinel.errors import Unauthorized
from santinel.services.authn import unauthorized
from santinel.services.dpop import ALGORITHMS, DpopError, DpopVerifier, UseDpopNonce

DPOP_ALGS = " ".join(ALGORITHMS)


@dataclass(frozen=True)
class Presented:
    """What a request shows besides its token: scheme, proofs, URL and TLS client cert."""

    scheme: str  # "bearer" or "dpop", lower case
    token: str
    method: str
    url: str  # the request's URL as the client addressed it, without the query
    dpop_proofs: list[str] = field(default_factory=list)
    client_cert: str | None = None  # PEM, from the ASGI TLS extension


async def check(principal: Principal, presented: Presented, dpop: DpopVerifier) -> None:
    """Raise 401 unless `presented` shows what the token's binding requires."""
    cnf = principal.confirmation
    if cnf is None:
        if presented.scheme == "dpop":
            raise dpop_challenge("invalid_token", "This access token is not DPoP-bound.")
        return
    if cnf.x5t_s256 is not None and not _same_certificate(presented.client_cert, cnf.x5t_s256):
        raise unauthorized("This access token is bound to a client certificate.")
    if cnf.jkt is not None:
        if presented.scheme != "dpop":
            raise dpop_challenge("invalid_token", "This access token must be used with DPoP.")
        try:
            proof = await dpop.verify(
                presented.dpop_proofs, presented.method, presented.url, access_token=presented.token
            )
        except DpopError as error:
            raise dpop_error(error) from None
        if not hmac.compare_digest(proof.jkt, cnf.jkt):
            raise dpop_challenge("invalid_token", "This access token is bound to another key.")


def dpop_error(error: DpopError) -> Unauthorized:
    """The 401 of a refused proof, with the fresh nonce when one is what was missing."""
    problem = dpop_challenge(error.error, str(error))
    if isinstance(error, UseDpopNonce):
        problem.headers["DPoP-Nonce"] = error.nonce
    return problem


def dpop_challenge(code: str, description: str) -> Unauthorized:
    challenge = f'DPoP error="{code}", algs="{DPOP_ALGS}"'
    return Unauthorized(description, headers={"WWW-Authenticate": challenge})


def _same_certificate(pem: str | None, expected: str) -> bool:
    if pem is None:
        return False
    try:
        der = ssl.PEM_cert_to_DER_cert(pem)
    except ValueError:
        return False
    return hmac.compare_digest(x5t_s256(der), expected)
