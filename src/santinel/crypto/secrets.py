"""Random tokens, hashes of secrets kept at rest, and constant-time comparison."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2id with the library's RFC 9106 "low memory" profile: ~50 ms on the 2-core machines.
_PASSWORDS = PasswordHasher()
# A real hash of a random password: verifying against it costs the same as a real check, so an
# unknown user or client takes as long to refuse as a wrong password.
_DUMMY_HASH = _PASSWORDS.hash(secrets.token_urlsafe(16))


def random_token(nbytes: int = 32) -> str:
    """An unguessable URL-safe token (authorization codes, refresh tokens, client secrets)."""
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    """How opaque tokens are stored: SHA-256 (they are long random values, no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def hash_password(password: str) -> str:
    return _PASSWORDS.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches; a missing hash still costs one full verification."""
    try:
        return _PASSWORDS.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
