"""The server's signing keys: loaded from the store, the first one created on first start.

`santinel keys rotate` (another process) or another node may add a key at any time, so every
node reloads its `KeyRing` from the store periodically (`KeyRefresher`, started by the
Container): a new key signs everywhere within one interval, retired keys stay in the JWKS and
keep verifying until their `retire_after`, then drop out. A token naming a kid this node has
never seen also triggers a reload, at most once per `miss_interval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from santinel.crypto.jwt import KeyRing, SigningKey
from santinel.logging import get_logger
from santinel.storage.auth_records import KeyRecord
from santinel.storage.sql.auth_store import SqlAuthStore

ACCESS_TOKEN_SECONDS = 300
KEY_REFRESH_SECONDS = 30.0  # a rotation reaches every node within this
UNKNOWN_KID_RELOAD_SECONDS = 10.0  # unknown kids (maybe forged) reload at most this often

log = get_logger("santinel.keys")


async def load_keyring(store: SqlAuthStore) -> KeyRing:
    records = await store.keys()
    for family, alg in (("ES", "ES256"), ("RS", "RS256")):
        if not any(r.alg.startswith(family) and r.retire_after_us is None for r in records):
            await rotate(store, alg)
    return KeyRing([_key(r) for r in await store.keys()])


async def rotate(
    store: SqlAuthStore, alg: str = "ES256", *, retire_in_seconds: int = 2 * ACCESS_TOKEN_SECONDS
) -> str:
    """Add a signing key; the current ones stop signing now and stop verifying once the
    tokens they signed have expired (plus a margin).

    Running nodes sign with it within KEY_REFRESH_SECONDS; during that window they still sign
    with the previous key, whose tokens expire (ACCESS_TOKEN_SECONDS) before it retires."""
    key = SigningKey.generate(f"k-{uuid.uuid4().hex[:12]}", alg)
    now_us = int(time.time() * 1_000_000)
    retire_after = now_us + retire_in_seconds * 1_000_000
    await store.add_key(KeyRecord(key.kid, alg, key.private_pem(), now_us), retire_after)
    return key.kid


def _key(record: KeyRecord) -> SigningKey:
    return SigningKey.from_pem(
        record.kid, record.alg, record.private_pem, record.created_us // 1_000_000, _retire(record)
    )


def _retire(record: KeyRecord) -> int | None:
    return record.retire_after_us // 1_000_000 if record.retire_after_us is not None else None


class KeyRefresher:
    """Keeps one `KeyRing` in step with the store (mutated in place: `KeyRing.replace`).

    `start()` runs a background reload every `interval` seconds on the running loop and hooks
    the ring's unknown-kid notice; `close()` stops both. `reloads` counts successful reloads."""

    def __init__(
        self,
        store: SqlAuthStore,
        keyring: KeyRing,
        *,
        interval: float = KEY_REFRESH_SECONDS,
        miss_interval: float = UNKNOWN_KID_RELOAD_SECONDS,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.interval = interval
        self.miss_interval = miss_interval
        self.reloads = 0
        self._lock = asyncio.Lock()
        self._last_miss = -float("inf")
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        self.keyring.on_unknown_kid = self._unknown_kid

    async def close(self) -> None:
        if self.keyring.on_unknown_kid == self._unknown_kid:
            self.keyring.on_unknown_kid = None
        tasks = [t for t in (self._task, *self._pending) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None

    async def reload(self) -> None:
        """Read every key from the store and swap them into the ring (unchanged keys are kept,
        not parsed again). An empty store keeps the current keys."""
        async with self._lock:
            records = await self.store.keys()
            if not records:
                log.warning("the signing key table is empty: keeping the loaded keys")
                return
            known = {(k.kid, k.retire_after): k for k in self.keyring.keys}
            self.keyring.replace(known.get((r.kid, _retire(r))) or _key(r) for r in records)
            self.reloads += 1

    async def reload_for(self, kid: str) -> bool:
        """For async verifiers: reload (at most once per `miss_interval`) when `kid` is not in
        the ring; True when the ring now holds it."""
        if any(k.kid == kid for k in self.keyring.keys):
            return True
        if self._miss_allowed():
            await self._reload_logged()
        return any(k.kid == kid for k in self.keyring.keys)

    def _miss_allowed(self) -> bool:
        now = time.monotonic()
        if now - self._last_miss < self.miss_interval:
            return False
        self._last_miss = now
        return True

    def _unknown_kid(self, _kid: str) -> None:
        """Called synchronously by a verifier: schedule a reload, rate-limited, never raise."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if not self._miss_allowed():
            return
        task = loop.create_task(self._reload_logged())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._reload_logged()

    async def _reload_logged(self) -> None:
        try:
            await self.reload()
        except Exception as exc:  # a database hiccup must not stop later reloads
            log.warning("signing key reload failed", error=type(exc).__name__)
