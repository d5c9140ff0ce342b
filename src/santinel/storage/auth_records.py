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
    rate_limit: str | None = None  # e.g. "600/minute"; None: the tier's default
    quota: str | None = None  # e.g. "100000/day"; None: the tier's default
    allowed_types: str | None = None  # partner contract: space-separated types; None: any
    purposes: str | None = None  # partner contract: space-separated purpose-of-use codes
    cert_thumbprint: str | None = None  # x5t#S256 of the client's mTLS certificate
    require_dpop: bool = False  # tokens must be DPoP-bound (RFC 9449)


@dataclass(frozen=True)
class KeyRecord:
    kid: str
    alg: str
    private_pem: bytes
    created_us: int
    retire_after_us: int | None = None


@dataclass(frozen=True)
class UserRecord:
    user_id: str
    username: str
    password_hash: str  # argon2id
    fhir_user: str | None = None  # "Patient/123", "Practitioner/456"
    totp_secret: str | None = None  # base32; set when the user enrolled a second factor
    disabled: bool = False
    created_us: int = 0


@dataclass(frozen=True)
class AuthzRequestRecord:
    """A browser's authorization request between `/oauth/authorize` and its redirect."""

    request_digest: str
    csrf_digest: str
    params: str  # JSON of the validated request (client, redirect, scope, state, PKCE, launch)
    user_id: str | None
    patient: str | None
    failures: int
    expires_us: int


@dataclass(frozen=True)
class GrantRecord:
    grant_id: str
    client_id: str
    user_id: str
    scope: str
    context: str  # JSON: patient, encounter, fhirUser
    created_us: int
    expires_us: int
    revoked: bool = False


@dataclass(frozen=True)
class CodeRecord:
    code_digest: str
    grant_id: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    expires_us: int
    used: bool = False


@dataclass(frozen=True)
class RefreshRecord:
    token_digest: str
    grant_id: str
    client_id: str
    scope: str
    expires_us: int
    used: bool = False
