"""A real HTTP server on 127.0.0.1 that serves client JWK Sets (or misbehaves) and counts hits."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the status line
    drip: float = 0.0  # between body bytes chunks (sent 64 bytes at a time, no Content-Length)


class JwksServer:
    """`serve(path, …)` sets what a path answers; `hits[path]` counts the GETs it received."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with owner._lock:
                    owner.hits[self.path] += 1
                    reply = owner.replies.get(self.path, Reply(404, b"{}"))
                time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.drip:
                        self.send_header("Connection", "close")
                        self.end_headers()
                        for start in range(0, len(reply.body), 64):
                            self.wfile.write(reply.body[start : start + 64])
                            self.wfile.flush()
                            time.sleep(reply.drip)
                        return
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:  # the client gave up (timeouts under test)
                    pass

            def log_message(self, *_args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def serve(self, path: str, reply: Reply) -> str:
        with self._lock:
            self.replies[path] = reply
        return self.url(path)

    def serve_keys(self, path: str, *keys: Any, headers: dict[str, str] | None = None) -> str:
        """Serve the public parts of joserfc keys as a JWK Set."""
        body = json.dumps({"keys": [k.as_dict(private=False) for k in keys]}).encode()
        content = {"Content-Type": "application/jwk-set+json", **(headers or {})}
        return self.serve(path, Reply(200, body, content))

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)
