"""What every OAuth endpoint works with: the stores, the signing keys and this server's URLs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from santinel.crypto.jwt import KeyRing
from santinel.services.dpop import DpopVerifier
from santinel.storage.sql.auth_store import SqlAuthStore
from santinel.storage.sql.grant_store import SqlGrantStore


@dataclass(frozen=True)
class Endpoints:
    """Where this server is, as clients see it (from settings or the request)."""

    issuer: str  # e.g. https://santinel.example
    fhir_base: str  # the audience of access tokens

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/oauth/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.issuer}/oauth/authorize"

    @property
    def introspection_url(self) -> str:
        return f"{self.issuer}/oauth/introspect"

    @property
    def revocation_url(self) -> str:
        return f"{self.issuer}/oauth/revoke"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"


@dataclass(frozen=True)
class Sender:
    """What a token request shows of the client's keys besides its credentials: its `DPoP`
    proof headers (RFC 9449) and the TLS client certificate of its connection (RFC 8705)."""

    dpop: DpopVerifier
    dpop_proofs: list[str] = field(default_factory=list)
    client_cert: str | None = None  # PEM


@dataclass(frozen=True)
class OAuthContext:
    clients: SqlAuthStore
    grants: SqlGrantStore
    keyring: KeyRing
    endpoints: Endpoints
    sender: Sender | None = None  # None: no proof, no certificate (e.g. the CLI)


def now_us() -> int:
    return int(time.time() * 1_000_000)
