"""Server-provided DPoP nonces (RFC 9449 §8 and §9), the same on every node.

A nonce names a time window of `seconds` and carries an HMAC of it: base64url(window, 4 bytes
big-endian ‖ HMAC-SHA256(k, window) truncated to 16 bytes), 27 characters. A nonce is accepted
during its window and the next one (between `seconds` and twice that after it was first
served), so a client needs a new one at most every `seconds`; it limits how long a proof made
in advance (by someone who briefly had the key, e.g. through a script injected into the app)
stays usable, which the proof's own `iat`, chosen by the client's clock, cannot.

`k` is derived (HKDF-SHA256, its own label) from the private part of each of the server's
ECDSA access-token signing keys, so every node, holding the same key ring, makes and accepts
the same nonces with no shared state to add; the newest key mints, every key that still
verifies tokens is accepted (a rotation does not invalidate nonces in flight).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from hashlib import sha256

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from santinel.crypto.jwt import KeyRing, SigningKey

LABEL = b"santinel dpop-nonce v1"
MAC_BYTES = 16


class DpopNonces:
    def __init__(self, keyring: KeyRing, seconds: int) -> None:
        if seconds <= 0:
            raise ValueError("a nonce window must last at least one second")
        self.keyring = keyring
        self.seconds = seconds
        self._secrets: dict[str, bytes] = {}  # kid → derived key

    def current(self, now: float | None = None) -> str:
        window = self._window(now)
        mac = self._mac(self._secret(self.keyring.current), window)
        return _encode(window.to_bytes(4, "big") + mac)

    def accepts(self, nonce: object, now: float | None = None) -> bool:
        if not isinstance(nonce, str) or len(nonce) != 27:
            return False
        try:
            raw = base64.urlsafe_b64decode(nonce + "=")
        except (binascii.Error, ValueError):
            return False
        window = int.from_bytes(raw[:4], "big")
        if window not in (self._window(now), self._window(now) - 1):
            return False
        moment = int(time.time()) if now is None else int(now)
        return any(
            hmac.compare_digest(raw[4:], self._mac(self._secret(key), window))
            for key in self.keyring.verifying(moment)
            if key.alg.startswith("ES")
        )

    def _window(self, now: float | None) -> int:
        return int((time.time() if now is None else now) // self.seconds)

    def _secret(self, key: SigningKey) -> bytes:
        secret = self._secrets.get(key.kid)
        if secret is None:
            secret = HKDF(hashes.SHA256(), 32, salt=None, info=LABEL).derive(key.private_pem())
            self._secrets[key.kid] = secret
        return secret

    @staticmethod
    def _mac(secret: bytes, window: int) -> bytes:
        return hmac.new(secret, window.to_bytes(4, "big"), sha256).digest()[:MAC_BYTES]


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
