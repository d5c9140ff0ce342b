"""Security headers on every response (a pure ASGI middleware: no per-request task overhead)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


class SecurityHeadersMiddleware:
    """`SECURITY_HEADERS` on every response; on HTTPS ones also `Strict-Transport-Security`
    (RFC 6797: never on plain HTTP, where a network attacker could forge or strip it)."""

    def __init__(self, app: ASGIApp, hsts_seconds: int = 0) -> None:
        self.app = app
        self.hsts = f"max-age={hsts_seconds}" if hsts_seconds > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hsts = self.hsts if scope.get("scheme") == "https" else None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if hsts is not None:
                    headers.setdefault("Strict-Transport-Security", hsts)
            await send(message)

        await self.app(scope, receive, send_with_headers)
