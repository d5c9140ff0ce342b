"""OAuth 2 and SMART discovery endpoints: token, JWKS, `.well-known/smart-configuration`.

Responses follow RFC 6749 §5 (`Cache-Control: no-store`, JSON errors with `error` codes) and
never echo secrets or assertions back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from santinel.services.container import Container
from santinel.services.oauth.errors import InvalidRequest, OAuthError
from santinel.services.oauth.token import Endpoints, token
from santinel.settings import Settings

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_FORM_BYTES = 64 * 1024


def endpoints_for(request: Request, settings: Settings) -> Endpoints:
    if settings.public_base_url:
        fhir_base = settings.public_base_url.rstrip("/")
        issuer = fhir_base.removesuffix("/fhir")
    else:
        issuer = f"{request.url.scheme}://{request.url.netloc}"
        fhir_base = f"{issuer}/fhir"
    return Endpoints(issuer, fhir_base)


def smart_configuration(endpoints: Endpoints) -> dict[str, Any]:
    """SMART App Launch 2.x §Discovery: what this authorization server supports (only that)."""
    return {
        "issuer": endpoints.issuer,
        "jwks_uri": f"{endpoints.issuer}/.well-known/jwks.json",
        "token_endpoint": endpoints.token_url,
        "token_endpoint_auth_methods_supported": [
            "private_key_jwt",
            "client_secret_basic",
            "client_secret_post",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": ["system/*.cruds", "system/*.rs"],
        "response_types_supported": [],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": ["client-confidential-asymmetric", "client-confidential-symmetric"],
    }


def routes(current: Callable[[], Container], settings: Settings) -> list[Route]:
    async def token_endpoint(request: Request) -> Response:
        try:
            form = await _form(request)
            body = await token(
                current().auth_store,
                current().keyring,
                endpoints_for(request, settings),
                form,
                request.headers.get("authorization"),
            )
        except OAuthError as error:
            headers = dict(NO_STORE)
            if error.status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="santinel"'
            return JSONResponse(error.body(), status_code=error.status, headers=headers)
        return JSONResponse(body, headers=NO_STORE)

    async def jwks(_request: Request) -> Response:
        return JSONResponse(current().keyring.jwks(), headers={"Cache-Control": "max-age=60"})

    async def smart(request: Request) -> Response:
        return JSONResponse(smart_configuration(endpoints_for(request, settings)))

    return [
        Route("/oauth/token", token_endpoint, methods=["POST"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/fhir/.well-known/smart-configuration", smart, methods=["GET"]),
    ]


async def _form(request: Request) -> dict[str, str]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise InvalidRequest("The token request must be application/x-www-form-urlencoded.")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidRequest("The token request is too large.")
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise InvalidRequest(f"The parameter '{key[:40]}' is repeated (RFC 6749 §3.2).")
        form[key] = value
    return form
