"""Client JWK Sets registered by URL (`santinel clients add --jwks-url`), fetched and cached.

Fetching is deliberately narrow: https only (plain http only for loopback hosts), no redirects,
a 3-second budget for the whole exchange, at most 64 KiB, a JSON JWK Set or nothing. A set is
cached per URL (5 minutes, or the response's `Cache-Control: max-age` between 10 s and 1 h).
An assertion whose `kid` is not in the cached set refetches it at once, at most once per URL
every `min_interval` seconds, so random kids cannot make us hammer a client's server; a failed
fetch is remembered for the same time. One `JwksFetcher` per Container (so one per process),
found by the token endpoint through the Container's auth store (`fetcher_for`).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

DEFAULT_TTL_SECONDS = 300.0
MAX_TTL_SECONDS = 3600.0
MIN_INTERVAL_SECONDS = 10.0
TIMEOUT_SECONDS = 3.0
MAX_BYTES = 64 * 1024
MAX_URLS = 1024
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)


class JwksUnavailable(Exception):
    """The client's JWK Set could not be had; the message is for logs and never carries
    anything the remote server sent."""


@dataclass
class _Entry:
    key_set: dict[str, Any] | None  # None: the last fetch failed
    kids: frozenset[str]
    fetched: float  # time.monotonic()
    expires: float
    last_refetch: float = -float("inf")


class JwksFetcher:
    """Fetches and caches client JWK Sets; safe to share by every request of a process."""

    def __init__(
        self,
        *,
        default_ttl: float = DEFAULT_TTL_SECONDS,
        max_ttl: float = MAX_TTL_SECONDS,
        min_interval: float = MIN_INTERVAL_SECONDS,
        timeout: float = TIMEOUT_SECONDS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        self.min_interval = min_interval
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._tls: ssl.SSLContext | None = None

    async def key_set(self, url: str, kid: str | None = None) -> dict[str, Any]:
        """The JWK Set at `url`: cached, fetched when stale or missing, refetched (rate-limited)
        when `kid` is given and not in it. Raises `JwksUnavailable`."""
        check_url(url)
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            now = time.monotonic()
            entry = self._entries.get(url)
            fetched_now = False
            if entry is None or entry.expires <= now:
                entry = await self._refresh(url, now, entry)
                fetched_now = True
            if (
                entry.key_set is not None
                and kid is not None
                and kid not in entry.kids
                and not fetched_now
                and now - entry.last_refetch >= self.min_interval
            ):
                entry.last_refetch = now
                entry = await self._refresh(url, now, entry)
            if entry.key_set is None:
                raise JwksUnavailable("a recent fetch failed")
            return entry.key_set

    async def _refresh(self, url: str, now: float, previous: _Entry | None) -> _Entry:
        last_refetch = previous.last_refetch if previous else -float("inf")
        try:
            key_set, ttl = await self._download(url)
        except JwksUnavailable:
            if previous is not None and previous.key_set is not None and previous.expires > now:
                self._store(url, previous)  # a failed kid-miss refetch keeps the fresh set
                raise
            self._store(url, _Entry(None, frozenset(), now, now + self.min_interval, last_refetch))
            raise
        kids = frozenset(k["kid"] for k in key_set["keys"] if isinstance(k.get("kid"), str))
        entry = _Entry(key_set, kids, now, now + ttl, last_refetch)
        self._store(url, entry)
        return entry

    def _store(self, url: str, entry: _Entry) -> None:
        self._entries[url] = entry
        self._entries.move_to_end(url)
        while len(self._entries) > MAX_URLS:
            oldest, _ = self._entries.popitem(last=False)
            lock = self._locks.get(oldest)
            if lock is not None and not lock.locked():
                del self._locks[oldest]

    async def _download(self, url: str) -> tuple[dict[str, Any], float]:
        loopback = urlsplit(url).hostname in LOOPBACK_HOSTS
        body = bytearray()
        try:
            async with (
                asyncio.timeout(self.timeout),
                httpx.AsyncClient(
                    timeout=self.timeout,
                    follow_redirects=False,
                    verify=self._tls_context(),
                    trust_env=not loopback,  # never send loopback requests through a proxy
                ) as client,
                client.stream(
                    "GET", url, headers={"Accept": "application/jwk-set+json, application/json"}
                ) as response,
            ):
                if response.status_code != 200:
                    raise JwksUnavailable(f"HTTP status {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise JwksUnavailable("response too large")
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise JwksUnavailable("response too large")
                cache_control = response.headers.get("cache-control")
        except TimeoutError:
            raise JwksUnavailable("timed out") from None
        except httpx.HTTPError as exc:
            raise JwksUnavailable(type(exc).__name__) from None
        return parse_key_set(bytes(body)), self._ttl(cache_control)

    def _ttl(self, cache_control: str | None) -> float:
        if not cache_control:
            return self.default_ttl
        lowered = cache_control.lower()
        if "no-store" in lowered or "no-cache" in lowered:
            return self.min_interval
        match = _MAX_AGE.search(cache_control)
        if match is None:
            return self.default_ttl
        return min(max(float(match.group(1)), self.min_interval), self.max_ttl)

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:  # built once: reading the CA bundle costs ~0.1 s
            self._tls = ssl.create_default_context()
        return self._tls


def check_url(url: str) -> None:
    """https, or http to a loopback host (local tests, sidecars); nothing else is fetched."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise JwksUnavailable("unparsable URL") from None
    if not host or parts.username is not None or parts.password is not None:
        raise JwksUnavailable("URL without a host, or with credentials")
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return
    raise JwksUnavailable("URL scheme not allowed")


def parse_key_set(body: bytes) -> dict[str, Any]:
    """A JSON JWK Set with at least one key joserfc can import, or `JwksUnavailable`."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise JwksUnavailable("not JSON") from None
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise JwksUnavailable("not a JWK Set")
    try:
        KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, KeyError, TypeError):
        raise JwksUnavailable("no usable key in the JWK Set") from None
    return {"keys": keys}


# The Container registers its fetcher against its auth store, which the token endpoint already
# hands to client authentication: no new parameter, and each Container uses its own fetcher.
_BY_STORE: weakref.WeakKeyDictionary[object, JwksFetcher] = weakref.WeakKeyDictionary()
_fallback: JwksFetcher | None = None


def attach(store: object, fetcher: JwksFetcher) -> None:
    _BY_STORE[store] = fetcher


def fetcher_for(store: object) -> JwksFetcher:
    """The fetcher of the Container owning `store` (a process-wide one for a bare store)."""
    global _fallback
    found = _BY_STORE.get(store)
    if found is not None:
        return found
    if _fallback is None:
        _fallback = JwksFetcher()
    return _fallback
