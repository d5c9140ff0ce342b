"""Where the key-encryption key (KEK) lives: a local key file, the environment, or a KMS.

A provider wraps and unwraps data keys: `wrap(key, context)`, where `context` binds the wrapped
key to its place (its key id and owner), so a wrapped key copied to another row does not
unwrap. `kek_id` names the KEK without revealing it, so the database can say which KEK wrapped
each of its keys (and a server started with another KEK can say so clearly).

- `FileKeyProvider`: 32 random bytes, base64, in a file created with mode 0600;
- `EnvKeyProvider`: the same 32 bytes given in the environment;
- `VaultTransitProvider`: HashiCorp Vault's Transit secrets engine (HTTP API `/v1/<mount>/
  encrypt|decrypt|rewrap/<key>`, `/v1/<mount>/keys/<key>[/rotate]`): the KEK never leaves Vault.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from santinel.crypto.envelope import KEY_BYTES, NONCE_BYTES, new_key

WRAP_FORMAT = 1
WRAP_AAD = b"santinel data key wrap v1\x00"


class KeyProviderError(Exception):
    """The KEK is unavailable or misconfigured; the message is meant for the operator."""


class WrongKek(KeyProviderError):
    """This KEK does not unwrap that key (another KEK wrapped it, or it was altered)."""


class KeyProvider(Protocol):
    description: str  # where the KEK comes from, for messages ("key file /etc/…")

    @property
    def kek_id(self) -> str: ...

    async def wrap(self, key: bytes, context: bytes) -> bytes: ...

    async def unwrap(self, wrapped: bytes, context: bytes) -> bytes: ...

    async def reload(self) -> None:
        """Read the KEK's source again (another process may have rotated it)."""

    async def close(self) -> None: ...


def parse_key_text(text: str) -> bytes:
    """A KEK as written in a key file or the environment: base64 (standard or URL-safe) of 32
    bytes."""
    cleaned = text.strip()
    try:
        secret = base64.b64decode(cleaned.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise KeyProviderError("the key-encryption key is not base64") from None
    if len(secret) != KEY_BYTES:
        raise KeyProviderError(
            f"the key-encryption key must be {KEY_BYTES} bytes (base64), not {len(secret)}"
        )
    return secret


def key_text(secret: bytes) -> str:
    return base64.b64encode(secret).decode()


class LocalKek:
    """A KEK held in this process (file or environment): AES-256-GCM key wrapping."""

    def __init__(self, secret: bytes, description: str) -> None:
        self.description = description
        self._set(secret)

    def _set(self, secret: bytes) -> None:
        self._aead = AESGCM(secret)
        fingerprint = hmac.digest(secret, b"santinel kek id", "sha256").hex()[:16]
        self._kek_id = f"local:{fingerprint}"

    @property
    def kek_id(self) -> str:
        return self._kek_id

    async def wrap(self, key: bytes, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return bytes((WRAP_FORMAT,)) + nonce + self._aead.encrypt(nonce, key, WRAP_AAD + context)

    async def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        if len(wrapped) < 1 + NONCE_BYTES or wrapped[0] != WRAP_FORMAT:
            raise WrongKek("not a key wrapped by a local key-encryption key")
        nonce, body = wrapped[1 : 1 + NONCE_BYTES], wrapped[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, WRAP_AAD + context)
        except InvalidTag:
            raise WrongKek("the key-encryption key does not unwrap this key") from None

    async def reload(self) -> None:
        return None

    async def close(self) -> None:
        return None


class FileKeyProvider(LocalKek):
    """The KEK in a file (base64, mode 0600), created on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(_read_key_file(path), f"key file {path}")

    @classmethod
    def load_or_create(cls, path: Path) -> FileKeyProvider:
        if not path.exists():
            write_key_file(path, new_key())
        return cls(path)

    @property
    def next_path(self) -> Path:
        """Where `santinel keys rotate-kek` puts the new KEK until the database uses it."""
        return path_with_suffix(self.path, ".next")

    def group_or_world_readable(self) -> bool:
        return bool(self.path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))

    async def reload(self) -> None:
        self._set(_read_key_file(self.path))


def path_with_suffix(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def write_key_file(path: Path, secret: bytes) -> None:
    """Create a key file readable by its owner only (refuses to overwrite one)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key_text(secret) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _read_key_file(path: Path) -> bytes:
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyProviderError(f"cannot read the key file {path}: {exc.strerror}") from None
    return parse_key_text(text)


class EnvKeyProvider(LocalKek):
    """The KEK given in the environment (`SANTINEL_KEK`, base64 of 32 bytes)."""

    def __init__(self, text: str, name: str = "SANTINEL_KEK") -> None:
        super().__init__(parse_key_text(text), f"environment variable {name}")


REWRAP_BATCH = 250  # keys per Vault `rewrap` request


class VaultTransitProvider:
    """HashiCorp Vault Transit: wrap = `encrypt`, unwrap = `decrypt`, re-wrap = `rewrap`.

    The wrapped value is Vault's ciphertext (`vault:v<N>:…`). Vault's own AAD needs a recent
    version, so the context is bound inside the plaintext instead (`len ‖ context ‖ key`) and
    checked after decryption. `kek_id` names the mount, key and latest version.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        mount: str = "transit",
        key: str = "santinel",
        namespace: str | None = None,
        verify: bool | str = True,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"X-Vault-Token": token}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            verify=verify,
            transport=transport,
            follow_redirects=False,
        )
        self.mount, self.key = mount.strip("/"), key
        self.description = f"Vault transit key {self.mount}/{key} at {url}"
        self._version = 0

    @property
    def kek_id(self) -> str:
        return f"vault:{self.mount}/{self.key}:v{self._version}"

    async def reload(self) -> None:
        data = await self._call("GET", f"keys/{self.key}")
        self._version = int(data.get("latest_version") or 0)

    async def wrap(self, key: bytes, context: bytes) -> bytes:
        if not self._version:
            await self.reload()
        plaintext = len(context).to_bytes(2, "big") + context + key
        data = await self._call("POST", f"encrypt/{self.key}", {"plaintext": _b64(plaintext)})
        return str(data["ciphertext"]).encode()

    async def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        data = await self._call("POST", f"decrypt/{self.key}", {"ciphertext": wrapped.decode()})
        try:
            plaintext = base64.b64decode(str(data["plaintext"]))
        except (binascii.Error, KeyError):
            raise WrongKek("Vault returned no plaintext") from None
        size = int.from_bytes(plaintext[:2], "big")
        if plaintext[2 : 2 + size] != context:
            raise WrongKek("the unwrapped key belongs to another place")
        return plaintext[2 + size :]

    async def rewrap(self, wrapped: Sequence[bytes]) -> list[bytes]:
        """The same keys wrapped by the transit key's latest version (they stay in Vault), by
        `batch_input` requests of `REWRAP_BATCH`: a `rotate-kek` of 100,000 patients' keys is
        400 calls, not 100,000."""
        rewrapped: list[bytes] = []
        for start in range(0, len(wrapped), REWRAP_BATCH):
            chunk = wrapped[start : start + REWRAP_BATCH]
            items = [{"ciphertext": w.decode()} for w in chunk]
            data = await self._call("POST", f"rewrap/{self.key}", {"batch_input": items})
            results = data.get("batch_results")
            if not isinstance(results, list) or len(results) != len(chunk):
                raise KeyProviderError(f"{self.description} answered a rewrap without results")
            failed = [r for r in results if not isinstance(r, dict) or "ciphertext" not in r]
            if failed:
                first = failed[0].get("error") if isinstance(failed[0], dict) else None
                raise KeyProviderError(
                    f"{self.description} could not rewrap {len(failed)} of {len(chunk)} keys "
                    f"({first or 'no ciphertext'}); none was changed"
                )
            rewrapped += [str(r["ciphertext"]).encode() for r in results]
        return rewrapped

    async def rotate(self) -> None:
        """A new version of the transit key; later wraps use it, older ones still unwrap."""
        await self._call("POST", f"keys/{self.key}/rotate")
        await self.reload()

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(
        self, method: str, path: str, payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            response = await self._http.request(method, f"/v1/{self.mount}/{path}", json=payload)
        except httpx.HTTPError as exc:
            raise KeyProviderError(f"{self.description} is unreachable: {exc}") from None
        if response.status_code == 204:
            return {}
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400:
            errors = "; ".join(map(str, body.get("errors") or [])) or response.reason_phrase
            failure = WrongKek if response.status_code == 400 and "decrypt" in path else None
            raise (failure or KeyProviderError)(
                f"{self.description} answered {response.status_code}: {errors}"
            )
        data = body.get("data") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else {}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
