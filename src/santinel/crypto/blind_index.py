"""Blind indexes: keyed digests of identifying values, so equality searches work on values the
database never holds in clear (the technique of CipherSweet and of "blind indexing").

One master key (random, wrapped by the KEK like a data key) derives one HMAC key per index
scope (HKDF-SHA-256, `info` = the scope, e.g. `Patient.family`): equal values give equal
terms within one parameter only, never across parameters. A term is the first 128 bits of
HMAC-SHA-256(scope key, kind ‖ 0x00 ‖ value), in hex: `kind` separates the forms of one value
(the whole normalized value, its prefixes, the exact text, a token code…).
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TERM_BYTES = 16
INFO = b"santinel blind index v1\x00"


class BlindIndex:
    def __init__(self, master: bytes) -> None:
        if len(master) < 32:
            raise ValueError("the blind-index master key is at least 32 bytes")
        self._master = master
        # one keyed HMAC state per scope, copied for each term: the key's pads are hashed once
        # (a new patient takes ~40 terms; copying is twice as fast as `hmac.digest`)
        self._macs: dict[str, hmac.HMAC] = {}

    def term(self, scope: str, kind: str, value: str) -> str:
        base = self._macs.get(scope)
        if base is None:
            base = self._macs[scope] = hmac.new(self._derive(scope), digestmod="sha256")
        mac = base.copy()
        mac.update(kind.encode() + b"\x00" + value.encode())
        return mac.digest()[:TERM_BYTES].hex()

    def _derive(self, scope: str) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO + scope.encode())
        return hkdf.derive(self._master)
