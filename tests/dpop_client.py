"""A DPoP client for tests (RFC 9449 §4): a key pair and the proofs it signs."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey


class DpopKey:
    """The client's proof-of-possession key; `proof()` signs one proof JWT."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.key: ECKey | RSAKey | OKPKey
        if alg.startswith("ES"):
            self.key = ECKey.generate_key("P-256" if alg == "ES256" else "P-384")
        elif alg == "Ed25519":
            self.key = OKPKey.generate_key("Ed25519")
        else:
            self.key = RSAKey.generate_key(2048)

    @property
    def jkt(self) -> str:
        return str(self.key.thumbprint())

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A proof for `method url`; `claims` override or add claims (None removes one)."""
        body: dict[str, Any] = {
            "jti": uuid.uuid4().hex,
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if access_token is not None:
            body["ath"] = ath(access_token)
        if nonce is not None:
            body["nonce"] = nonce
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        head = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.key.as_dict(private=False)}
        head.update(header or {})
        return jwt.encode(head, body, self.key, algorithms=[self.alg])


def ath(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    """The (unverified) claims of a JWT, to look at `cnf`."""
    import json

    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
