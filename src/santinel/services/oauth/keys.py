"""The server's signing keys: loaded from the store, the first one created on first start."""

from __future__ import annotations

import time
import uuid

from santinel.crypto.jwt import KeyRing, SigningKey
from santinel.storage.auth_records import KeyRecord
from santinel.storage.sql.auth_store import SqlAuthStore

ACCESS_TOKEN_SECONDS = 300


async def load_keyring(store: SqlAuthStore) -> KeyRing:
    records = await store.keys()
    if not records:
        await rotate(store)
        records = await store.keys()
    return KeyRing([_key(r) for r in records])


async def rotate(store: SqlAuthStore, alg: str = "ES256") -> str:
    """Add a signing key; the current ones stop signing now and stop verifying once the
    tokens they signed have expired (plus a margin)."""
    key = SigningKey.generate(f"k-{uuid.uuid4().hex[:12]}", alg)
    now_us = int(time.time() * 1_000_000)
    retire_after = now_us + 2 * ACCESS_TOKEN_SECONDS * 1_000_000
    await store.add_key(KeyRecord(key.kid, alg, key.private_pem(), now_us), retire_after)
    return key.kid


def _key(record: KeyRecord) -> SigningKey:
    retire = record.retire_after_us // 1_000_000 if record.retire_after_us is not None else None
    return SigningKey.from_pem(
        record.kid, record.alg, record.private_pem, record.created_us // 1_000_000, retire
    )
