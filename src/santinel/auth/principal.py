"""Who is calling: built by authentication from a verified access token, read by policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from santinel.auth.scopes import Scopes

Tier = Literal["internal", "partner", "public"]


@dataclass(frozen=True)
class Confirmation:
    """The `cnf` claim (RFC 7800) of a sender-constrained token: the DPoP key's thumbprint
    (RFC 9449 `jkt`) and/or the client certificate's (RFC 8705 `x5t#S256`) it is bound to."""

    jkt: str | None = None
    x5t_s256: str | None = None


@dataclass(frozen=True)
class Principal:
    client_id: str
    tier: Tier
    scopes: Scopes
    patient: str | None = None  # SMART launch context: the patient id the app works for
    fhir_user: str | None = None  # "Practitioner/123", "Patient/456"
    user: str | None = None  # the end user's id at this server, when a person signed in
    token_id: str | None = None  # the access token's jti (audit, revocation)
    purpose_of_use: tuple[str, ...] = ()
    confirmation: Confirmation | None = None  # a token bound to a key or a certificate
    # The only types this principal may touch (a partner's contract, the public tier's types);
    # None: no such restriction. Set by traffic control from the client's registration.
    allowed_types: frozenset[str] | None = None
    anonymous: bool = False  # no token: the public tier's anonymous caller (refusals are 401)
