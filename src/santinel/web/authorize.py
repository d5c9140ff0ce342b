"""The pages of the authorization endpoint: sign-in, patient picker, consent (HTML, no script).

Every page is rendered by Jinja2 with autoescaping, sent with `Cache-Control: no-store` and a
Content-Security-Policy that allows our stylesheet and form posts to us or to the client's
redirect URI (Chromium applies `form-action` to the redirect that follows a post).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from santinel.auth.scopes import parse_resource_scope
from santinel.services.audit import AuditUnavailable
from santinel.services.container import Container
from santinel.services.oauth import authorization, patients
from santinel.services.oauth.authorization import PageError, Pending, Step
from santinel.services.oauth.context import OAuthContext
from santinel.web import traffic
from santinel.web.forms import FormError, read_pairs, single_values

COOKIE = "santinel_authz"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
TEMPLATES = Environment(
    loader=PackageLoader("santinel.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
STYLESHEET = resources.files("santinel.web").joinpath("static/santinel.css").read_bytes()
VERBS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
OTHER_SCOPE_TEXT = {
    "openid": "Know who you are",
    "fhirUser": "Know your user record (Patient or Practitioner)",
    "profile": "Know your name",
    "launch": "Receive the context your health record system launched it with",
    "launch/patient": "Know which patient is selected",
    "launch/encounter": "Know which encounter is selected",
    "offline_access": "Keep access when you are not using it, until you revoke it",
    "online_access": "Keep access while you are using it",
}


def routes(
    current: Callable[[], Container], context: Callable[[Request], OAuthContext]
) -> list[Route]:
    async def authorize(request: Request) -> Response:
        try:
            await traffic.page_budget(current(), request)
            if request.method == "POST":  # SMART `authorize-post`
                params = single_values(await read_pairs(request))
            else:
                params = _query(request)
            step = await authorization.start(context(request), params)
        except (PageError, FormError) as error:
            return _error_page(error)
        return await _respond(request, current(), step)

    async def login(request: Request) -> Response:
        try:
            await traffic.page_budget(current(), request)
            form = single_values(await read_pairs(request))
            step = await traffic.sign_in_attempt(  # slowed, then locked, after failures
                current(),
                request,
                form.get("username", ""),
                lambda: authorization.login(context(request), request.cookies.get(COOKIE), form),
            )
            await _audit_sign_in(current(), request, step)
        except (PageError, FormError) as error:
            return _error_page(error)
        return await _respond(request, current(), step)

    async def patient(request: Request) -> Response:
        ctx, cookie = context(request), request.cookies.get(COOKIE)
        try:
            if request.method == "GET":
                step = await authorization.patient_page(ctx, cookie)
            else:
                form = single_values(await read_pairs(request))
                exists = await patients.exists(current().service, form.get("patient", ""))
                step = await authorization.choose_patient(ctx, cookie, form, exists)
        except (PageError, FormError) as error:
            return _error_page(error)
        return await _respond(request, current(), step)

    async def consent(request: Request) -> Response:
        try:
            pairs = await read_pairs(request)
            form = {k: v for k, v in pairs if k != "scope"}
            approved = [v for k, v in pairs if k == "scope"]
            step = await authorization.decide(
                context(request), request.cookies.get(COOKIE), form, approved
            )
        except (PageError, FormError) as error:
            return _error_page(error)
        return await _respond(request, current(), step)

    async def stylesheet(_request: Request) -> Response:
        return Response(
            STYLESHEET, media_type="text/css", headers={"Cache-Control": "max-age=3600"}
        )

    return [
        Route("/oauth/authorize", authorize, methods=["GET", "POST"]),
        Route("/oauth/login", login, methods=["POST"]),
        Route("/oauth/patient", patient, methods=["GET", "POST"]),
        Route("/oauth/consent", consent, methods=["POST"]),
        Route("/oauth/static/santinel.css", stylesheet, methods=["GET"]),
    ]


async def _audit_sign_in(container: Container, request: Request, step: Step) -> None:
    """A sign-in's outcome in the audit trail: the user on success, never the typed name on
    failure (it may be a password typed in the wrong field); unwritable trail → 503 page."""
    succeeded = step.kind in ("patient", "consent") and step.user is not None
    user = step.user
    user_ref = (user.fhir_user or f"user:{user.user_id}") if succeeded and user else None
    try:
        await container.audit.security(
            "login",
            200 if succeeded else 401,
            client_id=step.pending.client_id if step.pending else None,
            address=request.client.host if request.client else None,
            user_ref=user_ref,
            outcome_desc=None if succeeded else "sign-in refused",
        )
    except AuditUnavailable as unavailable:
        raise PageError(unavailable.diagnostics, 503) from None


def _query(request: Request) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in params:
            raise FormError(f"The parameter '{key[:40]}' is repeated.")
        params[key] = value
    return params


async def _respond(request: Request, container: Container, step: Step) -> Response:
    if step.kind == "redirect" and step.redirect is not None:
        response: Response = RedirectResponse(step.redirect, status_code=303, headers=NO_STORE)
        response.delete_cookie(COOKIE, path="/oauth")
        return response
    pending = step.pending
    if pending is None:  # every page step carries its request; never trust that silently
        return _error_page(PageError(authorization.SESSION_LOST))
    values: dict[str, object] = {"pending": pending, "csrf": step.csrf, "error": step.error}
    values["user"] = step.user
    if step.kind == "patient":
        query = request.query_params.get("q", "") if request.method == "GET" else ""
        base = container.settings.public_base_url or f"{request.base_url}fhir".rstrip("/")
        values["query"] = query
        values["choices"] = await patients.choices(container.service, base, query)
    if step.kind == "consent":
        values["scopes"] = [(s, describe(s)) for s in pending.scope.split()]
        values["patient"] = step.patient
        if step.patient:
            values["patient_label"] = await patients.display(container.service, step.patient)
    html = TEMPLATES.get_template(f"{step.kind}.html").render(values)
    status = 401 if step.kind == "login" and step.error else 200
    response = HTMLResponse(html, status_code=status, headers=_page_headers(pending))
    if step.cookie is not None:
        response.set_cookie(
            COOKIE,
            step.cookie,
            max_age=authorization.REQUEST_SECONDS,
            path="/oauth",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )
    return response


def _page_headers(pending: Pending | None) -> dict[str, str]:
    targets = "'self'"
    if pending is not None:
        parts = urlsplit(pending.redirect_uri)
        targets += f" {parts.scheme}://{parts.netloc}"
    policy = (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'"
    )
    return {**NO_STORE, "Content-Security-Policy": policy}


def _error_page(error: PageError | FormError) -> Response:
    message = error.message if isinstance(error, PageError) else str(error)
    status = error.status if isinstance(error, PageError) else 400
    html = TEMPLATES.get_template("error.html").render(message=message)
    headers = _page_headers(None)
    if isinstance(error, traffic.RefusedPage):
        headers.update(error.headers)  # Retry-After
    return HTMLResponse(html, status_code=status, headers=headers)


def describe(scope: str) -> str:
    """A sentence a patient understands for one scope."""
    if scope in OTHER_SCOPE_TEXT:
        return OTHER_SCOPE_TEXT[scope]
    parsed = parse_resource_scope(scope)
    if parsed is None:
        return scope
    verbs = [VERBS[p] for p in "cruds" if p in parsed.permissions]
    what = "all records" if parsed.resource_type == "*" else f"{parsed.resource_type} records"
    whose = {
        "patient": "of the selected patient",
        "user": "you may access",
        "system": "of every patient",
    }
    text = f"{', '.join(verbs).capitalize()} {what} {whose[parsed.context]}"
    if parsed.query:
        text += " (only " + ", ".join(f"{k} = {v}" for k, v in parsed.query) + ")"
    return text
