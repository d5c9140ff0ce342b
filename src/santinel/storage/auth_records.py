"""Records of the authorization server's state, as stored (no behaviour, no secrets in clear)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientRecord:
    client_id: str
    name: str
    tier: str  # internal | partner | public
    scope: str  # the most this client may ever be granted
    auth_method: str  # private_key_jwt | client_secret_basic | client_secret_post | none
    secret_digest: str | None = None
    jwks: str | None = None  # JSON text of a JWK Set registered by value
    jwks_url: str | None = None
    redirect_uris: tuple[str, ...] = ()
    disabled: bool = False
    created_us: int = 0


@dataclass(frozen=True)
class KeyRecord:
    kid: str
    alg: str
    private_pem: bytes
    created_us: int
    retire_after_us: int | None = None
