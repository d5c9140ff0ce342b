"""Who is calling: built by authentication from a verified access token, read by policy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from santinel.auth.scopes import Scopes

Tier = Literal["internal", "partner", "public"]


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
