"""The Starlette application: FHIR routes under `/fhir`, health probes, and the request pipeline."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from santinel.audit.events import Actor
from santinel.auth.principal import Principal
from santinel.errors import FhirError, PayloadTooLarge
from santinel.logging import get_logger
from santinel.services import audit_context
from santinel.services.audit import AuditUnavailable
from santinel.services.audit_context import AuditScope
from santinel.services.container import Container
from santinel.services.dispatch import interaction_of
from santinel.services.request import FhirRequest
from santinel.settings import Settings
from santinel.web import negotiation, oauth, public_url, sender, traffic
from santinel.web.cors import CorsMiddleware, origin_of
from santinel.web.forwarded import ForwardedHeadersMiddleware
from santinel.web.headers import SecurityHeadersMiddleware
from santinel.web.responses import error_response, fhir_response, internal_error_response
from santinel.web.sender import DpopNonceMiddleware

log = get_logger("santinel.http")

REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")
FORM = "application/x-www-form-urlencoded"
FHIR_PREFIX = "/fhir/"


def create_app(settings: Settings, container: Container | None = None) -> Starlette:
    """Build the app. The container (database, services) opens at startup and closes at shutdown."""
    state = {"container": container}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        owned = state["container"] is None
        if owned:
            state["container"] = await Container.open(settings)
        try:
            yield
        finally:
            if owned and state["container"] is not None:
                await state["container"].close()

    def current() -> Container:
        c = state["container"]
        if c is None:
            raise RuntimeError("the application has not started")
        return c

    async def fhir_endpoint(request: Request) -> Response:
        return await handle_fhir(request, current(), settings)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def readyz(_request: Request) -> Response:
        ok, reason = await current().repository.ready()
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "reason": reason},
            status_code=200 if ok else 503,
            headers={"Cache-Control": "no-store"},
        )

    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        *oauth.routes(current, settings),
        Route("/fhir", fhir_endpoint, methods=methods),
        Route("/fhir/{path:path}", fhir_endpoint, methods=methods),
    ]

    async def allowed_origins() -> frozenset[str]:
        configured = {o.strip().lower() for o in settings.cors_origins.split(",") if o.strip()}
        clients = await current().auth_store.clients()
        registered = {origin_of(uri) for c in clients if not c.disabled for uri in c.redirect_uris}
        return frozenset(configured | {o for o in registered if o})

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(DpopNonceMiddleware, nonces=lambda: current().dpop.nonces)
    app.add_middleware(CorsMiddleware, origins=allowed_origins)
    app.add_middleware(SecurityHeadersMiddleware, hsts_seconds=settings.hsts_seconds)
    # outermost: every layer below sees the client, scheme and host the proxy forwarded
    app.add_middleware(ForwardedHeadersMiddleware, trusted=settings.forwarded_allow_ips)
    return app


async def handle_fhir(request: Request, container: Container, settings: Settings) -> Response:
    request_id = _request_id(request)
    started = time.perf_counter()
    status = 500
    media = "application/fhir+json"
    scope = audit_scope(request, request_id)
    entered = audit_context.enter(scope)
    admission = traffic.Admission()
    try:
        url_params = query_params(request)
        media = negotiation.response_type(
            request.headers.get("accept"), _last(url_params, "_format")
        )
        fhir_request = await to_fhir_request(request, settings, url_params)
        scope.interaction = interaction_of(fhir_request.method, fhir_request.path)
        fhir_request = await traffic.admit(  # tier, contract, rate limit and quota
            request,
            container,
            fhir_request,
            admission,
            authenticate(request, container, settings, fhir_request.base_url),
        )
        scope.actor = actor_for(fhir_request.principal, scope.actor)
        result = await container.service.handle(fhir_request)
        await container.audit.request_done(scope, result.status)
        status = result.status
        response = fhir_response(
            result,
            media,
            pretty=_last(url_params, "_pretty") == "true",
            head=request.method == "HEAD",
        )
    except FhirError as error:
        error = await audited_failure(container, scope, error)
        status = error.status
        response = error_response(error, media)
    except Exception:
        log.exception("unhandled error", request_id=request_id)
        await audited_failure(container, scope, None)
        response = internal_error_response(request_id)
    finally:
        audit_context.leave(entered)
    response.headers.update(admission.headers)  # RateLimit-Policy, RateLimit
    response.headers["X-Request-Id"] = request_id
    log.info(
        "request",
        request_id=request_id,
        method=request.method,
        path=request.url.path,  # never the query string: it can carry names and identifiers
        status=status,
        ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return response


def audit_scope(request: Request, request_id: str) -> AuditScope:
    address = request.client.host if request.client else None
    query = request.scope.get("query_string") or None
    return AuditScope(Actor(client_address=address), request_id=request_id, query=query)


def actor_for(principal: Principal | None, anonymous: Actor) -> Actor:
    if principal is None:
        return anonymous
    user = principal.fhir_user or (f"user:{principal.user}" if principal.user else None)
    return Actor(principal.client_id, anonymous.client_address, user, principal.purpose_of_use)


async def audited_failure(
    container: Container, scope: AuditScope, error: FhirError | None
) -> FhirError:
    """Record a refused or failed request; when even that cannot be written, the answer is
    the audit trail's 503 (the request was not served anyway)."""
    status = error.status if error is not None else 500
    description = error.diagnostics[:200] if error is not None else "internal error"
    try:
        await container.audit.request_done(scope, status, description)
    except AuditUnavailable as unavailable:
        return unavailable
    return error if error is not None else AuditUnavailable("internal error")


def query_params(request: Request) -> list[tuple[str, str]]:
    """The URL's query parameters in order, parsed once per request (the query string as
    Starlette's `request.url.query` gives it, without building and re-splitting the URL)."""
    return parse_qsl(request.scope.get("query_string", b"").decode(), keep_blank_values=True)


def _last(params: list[tuple[str, str]], name: str) -> str | None:
    """The last value of `name`, like Starlette's `request.query_params.get`."""
    found = None
    for key, value in params:
        if key == name:
            found = value
    return found


async def authenticate(
    request: Request, container: Container, settings: Settings, fhir_base: str | None = None
) -> Principal | None:
    """The caller of a request bearing an access token; None without one (the service layer
    then answers 401 wherever data is asked for). A token that fails verification is 401 here.

    `fhir_base`: the request's `base_url`, when the caller has it already.
    """
    authorization = request.headers.get("authorization")
    if authorization is None:
        return None
    issuer, audience = token_issuer_audience(request, settings, fhir_base)
    principal = await container.authenticator.principal(authorization, issuer, audience)
    await sender.check(request, container.dpop, principal, authorization, audience)
    return principal


def token_issuer_audience(
    request: Request, settings: Settings, fhir_base: str | None = None
) -> tuple[str, str]:
    """(issuer, audience) an access token must name to be for this server, as
    `oauth.endpoints_for` (which issues them) names them: audience = the FHIR base, issuer = that
    base without `/fhir` (`santinel.web.public_url`)."""
    audience = fhir_base if fhir_base is not None else public_url.fhir_base(request, settings)
    return public_url.issuer_of(audience), audience


async def to_fhir_request(
    request: Request, settings: Settings, url_params: list[tuple[str, str]] | None = None
) -> FhirRequest:
    body = await read_body(request, settings.max_body_bytes)
    content_type = request.headers.get("content-type")
    path = fhir_path(request)
    params = list(url_params) if url_params is not None else query_params(request)
    if request.method == "POST" and path[-1:] == ("_search",):
        if content_type and content_type.split(";")[0].strip().lower() != FORM:
            negotiation.check_request_type("POST", content_type, bool(body))
        params += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        body = b""
    else:
        negotiation.check_request_type(request.method, content_type, bool(body))
    return FhirRequest(
        method=request.method,
        path=path,
        params=tuple(params),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        base_url=public_url.fhir_base(request, settings),
    )


def fhir_path(request: Request) -> tuple[str, ...]:
    """The segments after `/fhir/`, each percent-decoded exactly once.

    Split the raw (still encoded) path: the routed path is already decoded, so decoding it again
    would read `%2570` as `p`, and an encoded slash (`a%2Fb`) would become a segment boundary.
    """
    raw = request.scope.get("raw_path")
    if not raw:
        return tuple(p for p in request.path_params.get("path", "").split("/") if p)
    text = raw.decode("latin-1")
    start = text.find(FHIR_PREFIX)
    rest = text[start + len(FHIR_PREFIX) :] if start >= 0 else ""
    return tuple(unquote(p) for p in rest.split("/") if p)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if (
        declared is None
        and "transfer-encoding" not in request.headers
        and request.scope.get("http_version") in ("1.0", "1.1")
    ):
        return b""  # HTTP/1.x without either header: the request has no body (RFC 9112 §6.3)
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    return given if REQUEST_ID.fullmatch(given) else os.urandom(16).hex()
