"""A local stand-in for HashiCorp Vault's Transit secrets engine, over real HTTP on 127.0.0.1.

No Vault server can run here (not packaged in Debian; no binary downloads), so the provider is
tested against the documented HTTP API (`/v1/<mount>/keys/<name>`, `…/keys/<name>/rotate`,
`…/encrypt/<name>`, `…/decrypt/<name>`, `…/rewrap/<name>`; `X-Vault-Token`; errors as
`{"errors": [...]}`), reproduced here with real AES-256-GCM and key versions: ciphertexts are
`vault:v<N>:<base64(nonce ‖ ciphertext)>` like Vault's.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class FakeVault:
    def __init__(
        self,
        token: str = "s.test-token",  # noqa: S107 - a fake server's fake token
        mount: str = "transit",
        key: str = "santinel",
    ) -> None:
        self.token, self.mount, self.key = token, mount, key
        self.versions: dict[int, bytes] = {1: os.urandom(32)}
        self.min_decryption_version = 1
        self.calls: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._answer(*owner.handle("GET", self.path, self.headers, None))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                payload = json.loads(raw) if raw else {}
                self._answer(*owner.handle("POST", self.path, self.headers, payload))

            def _answer(self, status: int, body: dict[str, Any] | None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeVault:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def latest(self) -> int:
        return max(self.versions)

    def handle(
        self, method: str, path: str, headers: Any, payload: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any] | None]:
        self.calls.append(f"{method} {path}")
        if headers.get("X-Vault-Token") != self.token:
            return 403, {"errors": ["permission denied"]}
        prefix = f"/v1/{self.mount}/"
        if not path.startswith(prefix):
            return 404, {"errors": ["no handler for route"]}
        route = path[len(prefix) :]
        body = payload or {}
        if method == "GET" and route == f"keys/{self.key}":
            return 200, {"data": self._key_info()}
        if method == "POST" and route == f"keys/{self.key}/rotate":
            self.versions[self.latest + 1] = os.urandom(32)
            return 204, None
        if method == "POST" and route == f"encrypt/{self.key}":
            return 200, {"data": {"ciphertext": self._encrypt(body["plaintext"])}}
        if method == "POST" and route == f"rewrap/{self.key}" and "batch_input" in body:
            return self._rewrap_batch(body["batch_input"])
        if method == "POST" and route in (f"decrypt/{self.key}", f"rewrap/{self.key}"):
            plaintext = self._decrypt(str(body.get("ciphertext", "")))
            if plaintext is None:
                return 400, {"errors": ["cipher: message authentication failed"]}
            if route.startswith("decrypt"):
                return 200, {"data": {"plaintext": plaintext}}
            return 200, {"data": {"ciphertext": self._encrypt(plaintext)}}
        return 404, {"errors": ["unsupported path"]}

    def _rewrap_batch(self, items: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        """Vault's batch form: one result per item, an item that fails has `error` (the
        request still answers 200 when some succeed, 400 when none does)."""
        results: list[dict[str, Any]] = []
        for item in items:
            plaintext = self._decrypt(str(item.get("ciphertext", "")))
            if plaintext is None:
                results.append({"error": "cipher: message authentication failed"})
            else:
                results.append({"ciphertext": self._encrypt(plaintext), "key_version": self.latest})
        failed = all("error" in r for r in results)
        return (400 if failed else 200), {"data": {"batch_results": results}}

    def _key_info(self) -> dict[str, Any]:
        return {
            "name": self.key,
            "type": "aes256-gcm96",
            "latest_version": self.latest,
            "min_decryption_version": self.min_decryption_version,
            "keys": {str(v): 0 for v in self.versions},
        }

    def _encrypt(self, plaintext_b64: str) -> str:
        version = self.latest
        nonce = os.urandom(12)
        sealed = AESGCM(self.versions[version]).encrypt(
            nonce, base64.b64decode(plaintext_b64), None
        )
        return f"vault:v{version}:" + base64.b64encode(nonce + sealed).decode()

    def _decrypt(self, ciphertext: str) -> str | None:
        try:
            _, tag, data = ciphertext.split(":", 2)
            version = int(tag.removeprefix("v"))
            raw = base64.b64decode(data)
            if version < self.min_decryption_version or version not in self.versions:
                return None
            opened = AESGCM(self.versions[version]).decrypt(raw[:12], raw[12:], None)
        except (ValueError, InvalidTag):
            return None
        return base64.b64encode(opened).decode()
