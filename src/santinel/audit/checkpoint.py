"""Signed checkpoints of the audit chain: (seq, hash, time) signed with the AUDIT key.

The audit key is not a token key and does not live in the database: whoever controls the
database alone can rewrite records and recompute the chain, but cannot sign a checkpoint for the
rewritten chain. Checkpoints exported elsewhere (`santinel audit checkpoints`) also survive the
database. The key file is created 0600 beside the data; deployments put it where the database
administrator cannot read it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

ALGORITHM = "ES256"
TYPE = "santinel-audit-checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    created_us: int
    signature: str  # compact JWS over the three fields above


def load_or_create_key(path: Path) -> ECKey:
    if path.exists():
        return ECKey.import_key(path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": ALGORITHM})
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key.as_pem(private=True))
    return key


def sign(key: ECKey, seq: int, chain_hash: str, created_us: int) -> Checkpoint:
    payload = orjson.dumps({"seq": seq, "hash": chain_hash, "created_us": created_us})
    header = {"alg": ALGORITHM, "typ": TYPE, "kid": key.thumbprint()}
    signature = jws.serialize_compact(header, payload, key, algorithms=[ALGORITHM])
    return Checkpoint(seq, chain_hash, created_us, signature)


def verify(key: ECKey, checkpoint: Checkpoint) -> bool:
    """The signature is the audit key's and covers exactly this checkpoint's fields."""
    try:
        signed = jws.deserialize_compact(checkpoint.signature, key, algorithms=[ALGORITHM])
    except (JoseError, ValueError):
        return False
    if signed.headers().get("typ") != TYPE:
        return False
    payload: dict[str, Any] = orjson.loads(signed.payload)
    return payload == {
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "created_us": checkpoint.created_us,
    }


def public_jwk(key: ECKey) -> dict[str, Any]:
    return dict(key.as_dict(private=False))
