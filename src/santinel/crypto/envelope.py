"""Envelope encryption (AES-256-GCM): data sealed under a data key (DEK), DEKs wrapped by a
key-encryption key (KEK).

A sealed value is `0x01 ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`; the associated data
(AAD) names where the value belongs (for a resource version: type, id, version and the DEK's id),
so a ciphertext copied to another row, or given another key id, fails to open. Nonces are random
(96 bits): one DEK seals far fewer than the 2^32 values NIST SP 800-38D allows per key.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = 1
NONCE_BYTES = 12
KEY_BYTES = 32  # AES-256


class Tampered(Exception):
    """A sealed value does not open: altered, moved to another place, or another key."""


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def associated_data(*parts: str) -> bytes:
    """An unambiguous AAD: each part length-prefixed (so `a`,`bc` differs from `ab`,`c`)."""
    out = bytearray()
    for part in parts:
        raw = part.encode()
        out += len(raw).to_bytes(2, "big") + raw
    return bytes(out)


class DataKey:
    """An unwrapped DEK, kept in memory only; `seal` / `open` cost microseconds."""

    __slots__ = ("_aead", "key_id")

    def __init__(self, key_id: str, secret: bytes) -> None:
        if len(secret) != KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        self.key_id = key_id
        self._aead = AESGCM(secret)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return bytes((FORMAT,)) + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) < 1 + NONCE_BYTES + 16 or sealed[0] != FORMAT:
            raise Tampered("not a sealed value of a known format")
        try:
            return self._aead.decrypt(sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :], aad)
        except InvalidTag:
            raise Tampered("the authentication tag does not match") from None
