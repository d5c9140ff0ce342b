"""The server's URLs as its clients see them: the FHIR base (links, `Location`, token audience)
and the authorization server's issuer.

`public_base_url` when configured; otherwise the request's scheme, Host and path prefix — those a
trusted proxy forwarded (`santinel.web.forwarded`), else the connection's own.
"""

from __future__ import annotations

import functools

from starlette.datastructures import URL
from starlette.requests import Request

from santinel.settings import Settings


def fhir_base(request: Request, settings: Settings) -> str:
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    return f"{origin(request)}/fhir"


def issuer(request: Request, settings: Settings) -> str:
    return issuer_of(fhir_base(request, settings))


def issuer_of(base: str) -> str:
    """The FHIR base without `/fhir`: where the OAuth endpoints live (the tokens' issuer)."""
    return base.removesuffix("/fhir")


def origin(request: Request) -> str:
    scope = request.scope
    host = next((value for key, value in scope["headers"] if key == b"host"), None)
    server = scope.get("server")
    root = _origin(scope.get("scheme", "http"), host, tuple(server) if server else None)
    prefix: str = scope.get("root_path", "")
    return root + prefix.rstrip("/")


@functools.lru_cache(maxsize=256)
def _origin(scheme: str, host: bytes | None, server: tuple[str, int] | None) -> str:
    """Starlette's own reading of scheme, Host header and server address (its URL class),
    computed once per distinct triple instead of building and splitting a URL per request."""
    url = URL(
        scope={
            "scheme": scheme,
            "server": server,
            "path": "/",
            "query_string": b"",
            "headers": [(b"host", host)] if host is not None else [],
        }
    )
    return f"{url.scheme}://{url.netloc}"
