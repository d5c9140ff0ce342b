"""OAuth 2 errors (RFC 6749 §5.2): one class per error code, each with its HTTP status."""

from __future__ import annotations


class OAuthError(Exception):
    error = "invalid_request"
    status = 400

    def __init__(self, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.headers = headers or {}  # added to the error response (e.g. `DPoP-Nonce`)

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    """Client authentication failed (§5.2): 401, the same answer whatever the reason."""

    error = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidDpopProof(OAuthError):
    """RFC 9449 §5: the DPoP proof is missing (for a client that must send one) or invalid."""

    error = "invalid_dpop_proof"


class UseDpopNonce(OAuthError):
    """RFC 9449 §8: retry with the nonce of the `DPoP-Nonce` header."""

    error = "use_dpop_nonce"


class TemporarilyUnavailable(OAuthError):
    """Too many requests or failed attempts (429), or rate limiting is down (503); the
    response says when to retry (`Retry-After`)."""

    error = "temporarily_unavailable"

    def __init__(self, description: str, status: int, headers: dict[str, str]) -> None:
        super().__init__(description, headers)
        self.status = status
