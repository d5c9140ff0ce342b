"""PKCE (RFC 7636) with `S256` only: SMART App Launch 2 forbids `plain`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

# RFC 7636 §4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# The S256 challenge is the base64url SHA-256 of a verifier, without padding: 43 characters.
CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def valid_challenge(challenge: str | None, method: str | None) -> bool:
    return method == "S256" and challenge is not None and CHALLENGE.fullmatch(challenge) is not None


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifies(verifier: str | None, challenge: str) -> bool:
    """Whether `verifier` is the one the challenge was made from (compared in constant time)."""
    if verifier is None or VERIFIER.fullmatch(verifier) is None:
        return False
    return hmac.compare_digest(s256(verifier), challenge)
