"""CORS (Fetch standard) for browser apps on another origin: discovery, metadata, token and
the FHIR API. Deny by default: an origin is allowed when it is the origin of a registered,
enabled client's redirect URI, or listed in `SANTINEL_CORS_ORIGINS`. No credentials mode: apps
send their access token in the `Authorization` header, never cookies, so the sign-in pages
(cookie-bound) are not CORS-enabled at all.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CORS_PATHS = ("/fhir", "/.well-known/", "/oauth/token", "/oauth/introspect", "/oauth/revoke")
ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS = (
    "Authorization, Content-Type, Accept, If-Match, If-None-Match, If-None-Exist, "
    "If-Modified-Since, Prefer, X-Request-Id, DPoP"
)
EXPOSE_HEADERS = (
    "Location, Content-Location, ETag, Last-Modified, X-Request-Id, Retry-After, WWW-Authenticate, "
    "DPoP-Nonce, RateLimit, RateLimit-Policy"
)
ORIGINS_TTL = 5.0  # seconds a newly registered client waits before its origin is allowed

OriginSource = Callable[[], Awaitable[frozenset[str]]]


def origin_of(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class CorsMiddleware:
    def __init__(self, app: ASGIApp, origins: OriginSource) -> None:
        self.app = app
        self.origins = origins
        self._cached: frozenset[str] = frozenset()
        self._expires = 0.0

    async def allowed(self, origin: str) -> bool:
        now = time.monotonic()
        if now >= self._expires:
            self._cached = await self.origins()
            self._expires = now + ORIGINS_TTL
        return origin.lower() in self._cached

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(CORS_PATHS):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = await self.allowed(origin)
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        if preflight:
            response = Response(status_code=204 if allowed else 403)
            if allowed:
                response.headers.update(
                    {
                        "Access-Control-Allow-Origin": origin,
                        "Access-Control-Allow-Methods": ALLOW_METHODS,
                        "Access-Control-Allow-Headers": ALLOW_HEADERS,
                        "Access-Control-Max-Age": "600",
                    }
                )
            response.headers["Vary"] = "Origin"
            await response(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.add_vary_header("Origin")
                if allowed:
                    out["Access-Control-Allow-Origin"] = origin
                    out["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)
