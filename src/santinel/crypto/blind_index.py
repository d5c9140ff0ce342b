"""Blind indexes: keyed digests of identifying values, so equality searches work on values the
database never holds in clear (the technique of CipherSweet and of "blind indexing").

One master key (random, wrapped by the KEK like a data key) derives one HMAC key per index
scope (HKDF-SHA-256, `info` = the scope, e.g. `Patient.family`): equal values give equal
terms within one parameter only, never across parameters. A term is the first 128 bits of
HMAC-SHA-256(scope key, kind ‖ 0x00 ‖ value), in hex: `kind` separates the forms of one value
(the whole normalized value, its prefixes, the exact text, a token code…).

The master key rotates (`santinel keys rotate-blind-index`): while every row is rebuilt under the
new one, a `BlindKeyring` writes terms under the newest key and searches for each key's terms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TERM_BYTES = 16
INFO = b"santinel blind index v1\x00"


class BlindIndex:
    def __init__(self, master: bytes) -> None:
        if len(master) < 32:
            raise ValueError("the blind-index master key is at least 32 bytes")
        self._master = master
        # HMAC-SHA-256 (RFC 2104) from two SHA-256 states per scope, the key's inner and outer
        # pads hashed once and copied for each term: a new patient takes ~40 terms, and
        # copying `hashlib` states costs 60 % of copying an `hmac.HMAC` (a third of
        # `hmac.digest`). `tests/unit/test_crypto_envelope.py` checks it against `hmac`.
        self._pads: dict[str, tuple[Any, Any]] = {}

    def term(self, scope: str, kind: str, value: str) -> str:
        pads = self._pads.get(scope)
        if pads is None:
            pads = self._pads[scope] = _pads(self._derive(scope))
        inner, outer = pads[0].copy(), pads[1].copy()
        inner.update(kind.encode() + b"\x00" + value.encode())
        outer.update(inner.digest())
        term: str = outer.digest()[:TERM_BYTES].hex()
        return term

    def terms(self, scope: str, kind: str, value: str) -> tuple[str, ...]:
        return (self.term(scope, kind, value),)

    def _derive(self, scope: str) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO + scope.encode())
        return hkdf.derive(self._master)


def _pads(key: bytes) -> tuple[Any, Any]:
    """SHA-256 states having hashed `key` ⊕ ipad and `key` ⊕ opad (a key of at most one block,
    zero-padded: HMAC's own rule)."""
    block = key.ljust(hashlib.sha256().block_size, b"\x00")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    return inner, outer


class BlindTerms(Protocol):
    def term(self, scope: str, kind: str, value: str) -> str:
        """The term index rows are written with."""

    def terms(self, scope: str, kind: str, value: str) -> tuple[str, ...]:
        """Every term a search looks up: one per key whose rows may still be in the index."""


class BlindKeyring:
    """The blind-index keys in use, newest first: rows are written under the newest; searches
    look up the terms of all, so a rotation can rebuild the rows while every search still
    finds each resource (under its old key or its new one). One object for the life of a
    process, its keys replaced in place when another process rotates them."""

    def __init__(self, keys: Sequence[tuple[str, BlindIndex]]) -> None:
        self.replace(keys)

    def replace(self, keys: Sequence[tuple[str, BlindIndex]]) -> None:
        if not keys:
            raise ValueError("a blind-index keyring needs a key")
        # one assignment: a term computed meanwhile is under the old keys or the new, whole
        self._keys = tuple(keys)

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key_id for key_id, _ in self._keys)

    def term(self, scope: str, kind: str, value: str) -> str:
        return self._keys[0][1].term(scope, kind, value)

    def terms(self, scope: str, kind: str, value: str) -> tuple[str, ...]:
        return tuple(index.term(scope, kind, value) for _, index in self._keys)
