"""Sender-constrained tokens at the token endpoint: what each new token is bound to.

- A client registered with a certificate (`ClientRecord.cert_thumbprint`) must connect with
  it (mutual TLS, verified against the server's client CA at the handshake) and gets tokens
  bound to it: `cnf.x5t#S256` (RFC 8705 §3).
- A request carrying a `DPoP` proof (RFC 9449 §5) gets tokens bound to the proof's key:
  `cnf.jkt`, `token_type: DPoP`. A client registered with `require_dpop` must send one.
- The refresh tokens of a public client that used DPoP at the code exchange are bound to that
  key (§5): the grant records it, and a refresh must prove the same key, checked before the
  refresh token is touched (a thief with another key cannot even burn it).

Proofs are checked before the code or refresh token is used, so a proof refused for want of a
nonce (`use_dpop_nonce`) leaves the code usable for the retry.
"""

from __future__ import annotations

import hmac
import ssl

from santinel.crypto.certificates import x5t_s256
from santinel.services.dpop import DpopError
from santinel.services.dpop import UseDpopNonce as NonceNeeded
from santinel.services.oauth.context import OAuthContext
from santinel.services.oauth.errors import InvalidDpopProof, InvalidRequest, UseDpopNonce
from santinel.storage.auth_records import ClientRecord

Confirmation = dict[str, str]


async def confirmation(ctx: OAuthContext, client: ClientRecord) -> Confirmation:
    """The `cnf` of the tokens this request gets (empty: plain bearer tokens)."""
    cnf: Confirmation = {}
    sender = ctx.sender
    if client.cert_thumbprint:
        presented = _thumbprint(sender.client_cert if sender else None)
        if presented is None or not hmac.compare_digest(presented, client.cert_thumbprint):
            raise InvalidRequest(
                "This client must connect with its registered TLS client certificate."
            )
        cnf["x5t#S256"] = client.cert_thumbprint
    if sender is not None and sender.dpop_proofs:
        try:
            proof = await sender.dpop.verify(sender.dpop_proofs, "POST", ctx.endpoints.token_url)
        except NonceNeeded as error:
            raise UseDpopNonce(str(error), {"DPoP-Nonce": error.nonce}) from None
        except DpopError as error:
            raise InvalidDpopProof(str(error)) from None
        cnf["jkt"] = proof.jkt
    elif client.require_dpop:
        raise InvalidDpopProof("This client must send a DPoP proof with its token requests.")
    return cnf


def binds_refresh(client: ClientRecord, cnf: Confirmation) -> str | None:
    """The key a public client's refresh tokens are bound to from this exchange on."""
    return cnf.get("jkt") if client.auth_method == "none" else None


def proves(bound_jkt: str | None, cnf: Confirmation) -> bool:
    """A refresh of a grant bound to a DPoP key (None: unbound) proves that key."""
    return bound_jkt is None or hmac.compare_digest(bound_jkt, cnf.get("jkt", ""))


def _thumbprint(pem: str | None) -> str | None:
    if pem is None:
        return None
    try:
        return x5t_s256(ssl.PEM_cert_to_DER_cert(pem))
    except ValueError:
        return None
