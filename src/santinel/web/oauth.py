"""OAuth 2 / SMART / OpenID endpoints: token, introspection, revocation, JWKS and discovery.

Responses follow RFC 6749 §5 (`Cache-Control: no-store`, JSON errors with `error` codes) and
never echo secrets, assertions or tokens back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from santinel.services.audit import AuditUnavailable
from santinel.services.container import Container
from santinel.services.dpop import ALGORITHMS as DPOP_ALGORITHMS
from santinel.services.oauth import introspection
from santinel.services.oauth.context import Endpoints, OAuthContext, Sender
from santinel.services.oauth.errors import InvalidRequest, OAuthError, TemporarilyUnavailable
from santinel.services.oauth.token import GRANT_TYPES, token
from santinel.settings import Settings
from santinel.web import authorize, public_url, traffic
from santinel.web.forms import FormError, read_pairs, single_values
from santinel.web.tls import client_certificate

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
AUTH_METHODS = ["private_key_jwt", "client_secret_basic", "client_secret_post"]
SCOPES_SUPPORTED = [
    "openid",
    "fhirUser",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
    "patient/*.rs",
    "patient/*.cruds",
    "user/*.rs",
    "user/*.cruds",
    "system/*.rs",
    "system/*.cruds",
]
SMART_CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "sso-openid-connect",
]

Handler = Callable[[OAuthContext, Mapping[str, str], str | None], Awaitable[dict[str, Any] | None]]


def endpoints_for(request: Request, settings: Settings) -> Endpoints:
    return Endpoints(public_url.issuer(request, settings), public_url.fhir_base(request, settings))


def smart_configuration(endpoints: Endpoints) -> dict[str, Any]:
    """SMART App Launch 2.x §Discovery: what this authorization server supports (only that)."""
    return {
        "issuer": endpoints.issuer,
        "jwks_uri": endpoints.jwks_url,
        "authorization_endpoint": endpoints.authorize_url,
        "token_endpoint": endpoints.token_url,
        "introspection_endpoint": endpoints.introspection_url,
        "revocation_endpoint": endpoints.revocation_url,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": list(GRANT_TYPES),
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": SMART_CAPABILITIES,
    }


def sender_constraints(settings: Settings) -> dict[str, Any]:
    """Sender-constrained tokens offered: DPoP always (RFC 9449 §5.1), certificate-bound
    tokens when mutual TLS is on (RFC 8705 §3.3)."""
    metadata: dict[str, Any] = {"dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS)}
    if settings.client_ca is not None:
        metadata["tls_client_certificate_bound_access_tokens"] = True
    return metadata


def openid_configuration(endpoints: Endpoints) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 §3 for the `openid fhirUser` part of SMART."""
    return {
        "issuer": endpoints.issuer,
        "authorization_endpoint": endpoints.authorize_url,
        "token_endpoint": endpoints.token_url,
        "jwks_uri": endpoints.jwks_url,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": list(GRANT_TYPES),
    }


def routes(current: Callable[[], Container], settings: Settings) -> list[Route]:
    def context(request: Request) -> OAuthContext:
        c = current()
        sender = Sender(c.dpop, request.headers.getlist("dpop"), client_certificate(request.scope))
        return OAuthContext(
            c.auth_store, c.grant_store, c.keyring, endpoints_for(request, settings), sender
        )

    def endpoint(handler: Handler, subtype: str) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            form: dict[str, str] = {}
            authorization = request.headers.get("authorization")
            try:
                await traffic.oauth_budget(current(), request)  # per address, then brute force
                form = await _form(request)
                body = await traffic.client_attempt(
                    current(),
                    request,
                    form,
                    authorization,
                    lambda: handler(context(request), form, authorization),
                )
            except OAuthError as error:
                failure = await audited(request, subtype, form, authorization, error)
                return _error(failure or error)
            unaudited = await audited(request, subtype, form, authorization, None)
            if unaudited is not None:
                return _error(unaudited)  # nothing leaves without its audit record
            if body is None:  # revocation: an empty 200 (RFC 7009 §2.2)
                return Response(status_code=200, headers=NO_STORE)
            return JSONResponse(body, headers=NO_STORE)

        return run

    async def audited(
        request: Request,
        subtype: str,
        form: Mapping[str, str],
        authorization: str | None,
        error: OAuthError | None,
    ) -> OAuthError | None:
        """Record the attempt (who claimed to ask, never a secret, assertion or token); the
        error to answer instead when the trail cannot be written."""
        try:
            await current().audit.security(
                subtype,
                error.status if error is not None else 200,
                client_id=traffic.presented_client_id(form, authorization),
                address=traffic.address_of(request),
                outcome_desc=error.error if error is not None else None,
            )
        except AuditUnavailable as unavailable:
            return TemporarilyUnavailable(unavailable.diagnostics, 503, {"Retry-After": "5"})
        return None

    async def revoke(
        ctx: OAuthContext, form: Mapping[str, str], authorization: str | None
    ) -> dict[str, Any] | None:
        await introspection.revoke(ctx, form, authorization)
        return None

    async def jwks(_request: Request) -> Response:
        return JSONResponse(current().keyring.jwks(), headers={"Cache-Control": "max-age=60"})

    async def smart(request: Request) -> Response:
        configuration = smart_configuration(endpoints_for(request, settings))
        return JSONResponse({**configuration, **sender_constraints(settings)})

    async def openid(request: Request) -> Response:
        configuration = openid_configuration(endpoints_for(request, settings))
        return JSONResponse({**configuration, **sender_constraints(settings)})

    return [
        Route("/oauth/token", endpoint(token, "token"), methods=["POST"]),
        Route(
            "/oauth/introspect",
            endpoint(introspection.introspect, "introspect"),
            methods=["POST"],
        ),
        Route("/oauth/revoke", endpoint(revoke, "revoke"), methods=["POST"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/fhir/.well-known/smart-configuration", smart, methods=["GET"]),
        Route("/.well-known/openid-configuration", openid, methods=["GET"]),
        *authorize.routes(current, context),
    ]


def _error(error: OAuthError) -> Response:
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="santinel"'
    headers.update(error.headers)
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def _form(request: Request) -> dict[str, str]:
    try:
        return single_values(await read_pairs(request))
    except FormError as error:
        raise InvalidRequest(str(error)) from None
