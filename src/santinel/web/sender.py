"""The HTTP side of sender-constrained tokens: what a request shows of its sender (scheme,
`DPoP` proofs, URL, TLS client certificate) for `services.sender_binding`, and the current
DPoP nonce on every answer to a DPoP request (RFC 9449 §8.2, §9: a client keeps it for its
next proof instead of being refused once per nonce window)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from santinel.auth.principal import Principal
from santinel.services import sender_binding
from santinel.services.dpop import DpopVerifier
from santinel.services.dpop_nonce import DpopNonces
from santinel.services.sender_binding import Presented
from santinel.web.tls import client_certificate

FHIR_PREFIX = "/fhir"


async def check(
    request: Request,
    dpop: DpopVerifier,
    principal: Principal,
    authorization: str,
    fhir_base: str,
) -> None:
    """401 unless the request shows what its token's binding requires (a plain bearer token
    with the `Bearer` scheme passes at once)."""
    scheme, _, token = authorization.partition(" ")
    scheme = scheme.lower()
    if principal.confirmation is None and scheme == "bearer":
        return
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    url = fhir_base + path.removeprefix(FHIR_PREFIX)
    presented = Presented(
        scheme=scheme,
        token=token.strip(),
        method=request.method,
        url=url,
        dpop_proofs=request.headers.getlist("dpop"),
        client_cert=client_certificate(request.scope),
    )
    await sender_binding.check(principal, presented, dpop)


class DpopNonceMiddleware:
    """Adds `DPoP-Nonce` (unless the answer set one) to responses to requests with a `DPoP`
    header; `nonces` gives the current source (None when nonces are off)."""

    def __init__(self, app: ASGIApp, nonces: Callable[[], DpopNonces | None]) -> None:
        self.app = app
        self.nonces = nonces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not any(k == b"dpop" for k, _ in scope["headers"]):
            await self.app(scope, receive, send)
            return

        async def send_with_nonce(message: Message) -> None:
            nonces = self.nonces()
            if message["type"] == "http.response.start" and nonces is not None:
                headers = MutableHeaders(scope=message)
                headers.setdefault("DPoP-Nonce", nonces.current())
            await send(message)

        await self.app(scope, receive, send_with_nonce)
