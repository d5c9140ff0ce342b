"""Signed checkpoints of the audit chain: (seq, hash, time) signed with the AUDIT key.

The audit key is not a token key and does not live in the database: whoever controls the
database alone can rewrite records and recompute the chain, but cannot sign a checkpoint for the
rewritten chain. Checkpoints exported elsewhere (`santinel audit checkpoints`) also survive the
database. The key file is created 0600 beside the data; deployments put it where the database
administrator cannot read it.
"""

from __future__ import annotations

import base64
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
# The pruning anchor: "records up to `seq` were deleted on purpose; the last one's hash was
# `hash`". Its own JWS type, so that a checkpoint signature cannot be passed off as an anchor
# (which would let the database owner delete old records without the key).
ANCHOR_TYPE = "santinel-audit-anchor"


class AuditKeyMissing(FileNotFoundError):
    """The audit key file does not exist where the settings say (commands that only read)."""


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
    # Written whole under a temporary name, then linked into place: two nodes starting together
    # on one shared key path both end up with the same key, never with a half-written file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(key.as_pem(private=True))
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return ECKey.import_key(path.read_bytes())  # another process created it first
    finally:
        temporary.unlink(missing_ok=True)
    return key


def load_key(path: Path) -> ECKey:
    """The audit key of an existing file, never a new one (what `santinel audit` commands use:
    a key created by mistake beside the wrong data dir would sign a second, unrelated chain)."""
    if not path.exists():
        raise AuditKeyMissing(f"no audit key at {path}")
    return ECKey.import_key(path.read_bytes())


def import_public_key(text: str | bytes) -> ECKey:
    """A verification key from a JWK (JSON) or a PEM public or private key."""
    data = text.encode() if isinstance(text, str) else text
    if data.lstrip().startswith(b"{"):
        return ECKey.import_key(orjson.loads(data))
    return ECKey.import_key(data)


def sign(key: ECKey, seq: int, chain_hash: str, created_us: int) -> Checkpoint:
    return Checkpoint(seq, chain_hash, created_us, _sign(key, TYPE, seq, chain_hash, created_us))


def verify(key: ECKey, checkpoint: Checkpoint) -> bool:
    """The signature is the audit key's and covers exactly this checkpoint's fields."""
    payload = _verified_payload(key, TYPE, checkpoint.signature)
    return payload == {
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "created_us": checkpoint.created_us,
    }


def sign_anchor(key: ECKey, seq: int, chain_hash: str, created_us: int) -> str:
    """The signature of a pruning anchor (records through `seq` deleted, the last one's hash)."""
    return _sign(key, ANCHOR_TYPE, seq, chain_hash, created_us)


def verify_anchor(key: ECKey, seq: int, chain_hash: str, signature: str) -> bool:
    """The anchor's signature is the audit key's, as an anchor, for exactly this seq and hash."""
    payload = _verified_payload(key, ANCHOR_TYPE, signature)
    return (
        payload is not None
        and payload.get("seq") == seq
        and payload.get("hash") == chain_hash
        and isinstance(payload.get("created_us"), int)
    )


def _sign(key: ECKey, typ: str, seq: int, chain_hash: str, created_us: int) -> str:
    payload = orjson.dumps({"seq": seq, "hash": chain_hash, "created_us": created_us})
    header = {"alg": ALGORITHM, "typ": typ, "kid": key.thumbprint()}
    return jws.serialize_compact(header, payload, key, algorithms=[ALGORITHM])


def _verified_payload(key: ECKey, typ: str, signature: str) -> dict[str, Any] | None:
    try:
        signed = jws.deserialize_compact(signature, key, algorithms=[ALGORITHM])
        if signed.headers().get("typ") != typ:
            return None
        payload = orjson.loads(signed.payload)
    except (JoseError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def key_id(signature: str) -> str | None:
    """The `kid` a signature names (which audit key signed it), unverified."""
    segment = signature.split(".", 1)[0]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def public_jwk(key: ECKey) -> dict[str, Any]:
    return dict(key.as_dict(private=False))
