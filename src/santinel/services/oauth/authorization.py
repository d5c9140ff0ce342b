"""The authorization endpoint's browser flow (RFC 6749 §4.1, SMART App Launch 2.x):

    /oauth/authorize ─▶ login ─▶ (patient picker) ─▶ consent ─▶ redirect_uri?code=…&state=…

Each browser's request lives in the database (so any node can serve the next step), keyed by
the digest of a random value held in an HttpOnly cookie; every form carries a one-time CSRF
token (kept as a digest, replaced at every page). Until the client and its redirect URI are
known to be genuine, errors are shown on our page, never redirected (RFC 6749 §4.1.2.1).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import orjson
import pyotp

from santinel.auth import pkce
from santinel.auth.scopes import Scopes, parse_scopes
from santinel.crypto.secrets import random_token, same, token_digest, verify_password
from santinel.services.oauth.context import OAuthContext, now_us
from santinel.services.oauth.grants import (
    OFFLINE_REFRESH_SECONDS,
    ONLINE_REFRESH_SECONDS,
    GrantContext,
)
from santinel.storage.auth_records import (
    AuthzRequestRecord,
    ClientRecord,
    CodeRecord,
    GrantRecord,
    UserRecord,
)

REQUEST_SECONDS = 600  # a user has ten minutes from the app's redirect to the consent
CODE_SECONDS = 60
MAX_LOGIN_FAILURES = 5
MAX_STATE = 1024
MAX_NONCE = 255
SIGN_IN_FAILED = "Unknown username, wrong password or wrong code."
SESSION_LOST = (
    "This sign-in page has expired or was already used. Go back to the application and start again."
)

Kind = Literal["login", "patient", "consent", "redirect"]


class PageError(Exception):
    """Shown on Santinel's own page: the client or its redirect URI cannot be trusted."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Pending:
    """A validated authorization request, as stored between the steps."""

    client_id: str
    client_name: str
    redirect_uri: str
    scope: str  # what may be granted: requested ∩ registered, user-facing contexts only
    state: str
    code_challenge: str
    nonce: str | None = None
    launch_patient: str | None = None
    launch_encounter: str | None = None

    @property
    def scopes(self) -> Scopes:
        return parse_scopes(self.scope)

    def needs_patient(self) -> bool:
        scopes = self.scopes
        return "launch/patient" in scopes.others or any(
            s.context == "patient" for s in scopes.resources
        )


@dataclass(frozen=True)
class Step:
    """What the browser gets next: a page to render, or a redirect to the client."""

    kind: Kind
    pending: Pending | None = None
    csrf: str | None = None
    cookie: str | None = None  # a new request cookie to set
    redirect: str | None = None
    error: str | None = None
    user: UserRecord | None = None
    patient: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def redirect_with(pending: Pending, issuer: str, **params: str) -> Step:
    """A redirect to the client carrying `params`, the `state` and our issuer (RFC 9207)."""
    separator = "&" if urlsplit(pending.redirect_uri).query else "?"
    query = urlencode({**params, "state": pending.state, "iss": issuer})
    return Step("redirect", pending, redirect=f"{pending.redirect_uri}{separator}{query}")


# -- step 1: the app sends the user here -------------------------------------------------------
async def start(ctx: OAuthContext, params: Mapping[str, str]) -> Step:
    client = await _trusted_client(ctx, params)
    redirect_uri = params["redirect_uri"]
    state = params.get("state", "")
    # From here on the redirect URI is the client's own: errors go back to it.
    bare = Pending(client.client_id, client.name, redirect_uri, "", state[:MAX_STATE], "")
    issuer = ctx.endpoints.issuer
    if params.get("response_type") != "code":
        return redirect_with(bare, issuer, error="unsupported_response_type")
    problem = _request_problem(ctx, params)
    if problem is not None:
        return redirect_with(bare, issuer, error="invalid_request", error_description=problem)
    scope = _grantable(client, params.get("scope", ""))
    if not scope.resources and "openid" not in scope.others:
        return redirect_with(
            bare, issuer, error="invalid_scope", error_description="No requested scope is allowed."
        )
    launch: dict[str, Any] = {}
    if params.get("launch"):
        found = await ctx.grants.launch(token_digest(params["launch"]), now_us())
        if found is None or "launch" not in scope.others:
            return redirect_with(
                bare,
                issuer,
                error="invalid_request",
                error_description="Unknown or expired launch, or no 'launch' scope.",
            )
        launch = orjson.loads(found)
    pending = Pending(
        client.client_id,
        client.name,
        redirect_uri,
        scope.text,
        state,
        params["code_challenge"],
        params.get("nonce") or None,
        launch.get("patient"),
        launch.get("encounter"),
    )
    cookie, csrf = random_token(), random_token()
    record = AuthzRequestRecord(
        token_digest(cookie),
        token_digest(csrf),
        orjson.dumps(asdict(pending)).decode(),
        None,
        None,
        0,
        now_us() + REQUEST_SECONDS * 1_000_000,
    )
    await ctx.grants.add_request(record, now_us())
    return Step("login", pending, csrf=csrf, cookie=cookie)


async def _trusted_client(ctx: OAuthContext, params: Mapping[str, str]) -> ClientRecord:
    client = await ctx.clients.client(params.get("client_id", ""))
    if client is None or client.disabled:
        raise PageError("This application is not registered here (unknown client_id).")
    if params.get("redirect_uri") not in client.redirect_uris:
        # exact string match (RFC 6749 §3.1.2.3, OAuth 2.1): no prefix, no normalisation
        raise PageError("The redirect_uri is not one this application registered.")
    return client


def _request_problem(ctx: OAuthContext, params: Mapping[str, str]) -> str | None:
    if not pkce.valid_challenge(params.get("code_challenge"), params.get("code_challenge_method")):
        return "PKCE is required: code_challenge with code_challenge_method=S256."
    if params.get("aud", "").rstrip("/") != ctx.endpoints.fhir_base:
        return f"aud must be this FHIR server: {ctx.endpoints.fhir_base}"
    if not params.get("state") or len(params["state"]) > MAX_STATE:
        return "state is required (at most 1024 characters)."
    if len(params.get("nonce", "")) > MAX_NONCE:
        return "nonce is too long."
    return None


def _grantable(client: ClientRecord, requested: str) -> Scopes:
    """What a user may approve: the request within the client's registration, without the
    `system/` scopes that no user can delegate."""
    granted = parse_scopes(client.scope).narrowed_to(parse_scopes(requested))
    users = tuple(s for s in granted.resources if s.context != "system")
    return Scopes(users, granted.others)


# -- step 2: the user signs in -----------------------------------------------------------------
async def login(ctx: OAuthContext, cookie: str | None, form: Mapping[str, str]) -> Step:
    record, pending = await _pending(ctx, cookie, form)
    if record.failures >= MAX_LOGIN_FAILURES:
        await ctx.grants.delete_request(record.request_digest)
        return redirect_with(pending, ctx.endpoints.issuer, error="access_denied")
    user = await ctx.grants.user_named(form.get("username", "")[:200])
    password_ok = verify_password(user.password_hash if user else None, form.get("password", ""))
    if user is None or user.disabled or not password_ok or not _second_factor(user, form):
        await ctx.grants.update_request(record.request_digest, failures=record.failures + 1)
        csrf = await _new_csrf(ctx, record)
        return Step("login", pending, csrf=csrf, error=SIGN_IN_FAILED)
    patient = pending.launch_patient
    own = _own_patient(user)
    if own is not None and patient is not None and own != patient:
        await ctx.grants.delete_request(record.request_digest)
        return redirect_with(pending, ctx.endpoints.issuer, error="access_denied")
    patient = patient or own
    await ctx.grants.update_request(record.request_digest, user_id=user.user_id, patient=patient)
    csrf = await _new_csrf(ctx, record)
    if patient is None and pending.needs_patient():
        return Step("patient", pending, csrf=csrf, user=user)
    return Step("consent", pending, csrf=csrf, user=user, patient=patient)


def _second_factor(user: UserRecord, form: Mapping[str, str]) -> bool:
    if not user.totp_secret:
        return True
    code = form.get("totp", "").strip()
    return code.isdigit() and pyotp.TOTP(user.totp_secret).verify(code, valid_window=1)


def _own_patient(user: UserRecord) -> str | None:
    """A person who is a patient acts for themself only."""
    kind, _, rid = (user.fhir_user or "").partition("/")
    return rid if kind == "Patient" and rid else None


# -- step 3 (when needed): the user picks the patient ---------------------------------------
async def patient_page(ctx: OAuthContext, cookie: str | None) -> Step:
    record, pending = await _pending(ctx, cookie, None)
    user = await _signed_in(ctx, record)
    return Step("patient", pending, csrf=await _new_csrf(ctx, record), user=user)


async def choose_patient(
    ctx: OAuthContext, cookie: str | None, form: Mapping[str, str], exists: bool
) -> Step:
    """`exists`: whether the chosen Patient is on this server (the caller looked it up)."""
    record, pending = await _pending(ctx, cookie, form)
    user = await _signed_in(ctx, record)
    if _own_patient(user) is not None or record.patient is not None:
        raise PageError(SESSION_LOST)
    csrf = await _new_csrf(ctx, record)
    if not exists:
        return Step("patient", pending, csrf=csrf, user=user, error="Choose a patient.")
    chosen = form["patient"]
    await ctx.grants.update_request(record.request_digest, patient=chosen)
    return Step("consent", pending, csrf=csrf, user=user, patient=chosen)


# -- step 4: the user approves (a subset of) the scopes -----------------------------------------
async def decide(
    ctx: OAuthContext,
    cookie: str | None,
    form: Mapping[str, str],
    approved: Sequence[str],
) -> Step:
    record, pending = await _pending(ctx, cookie, form)
    user = await _signed_in(ctx, record)
    if pending.needs_patient() and record.patient is None:
        raise PageError(SESSION_LOST)
    if not await ctx.grants.delete_request(record.request_digest):
        raise PageError(SESSION_LOST)  # a second submit of the same consent
    issuer = ctx.endpoints.issuer
    if form.get("decision") != "approve":
        return redirect_with(pending, issuer, error="access_denied")
    scopes = pending.scopes.narrowed_to(parse_scopes(" ".join(approved)))
    if not scopes.resources and "openid" not in scopes.others:
        return redirect_with(
            pending, issuer, error="access_denied", error_description="No scope was approved."
        )
    code = random_token()
    grant = _grant(pending, user, scopes, record.patient)
    await ctx.grants.add_grant(
        grant,
        CodeRecord(
            token_digest(code),
            grant.grant_id,
            pending.client_id,
            pending.redirect_uri,
            pending.code_challenge,
            pending.nonce,
            now_us() + CODE_SECONDS * 1_000_000,
        ),
    )
    return redirect_with(pending, issuer, code=code)


def _grant(pending: Pending, user: UserRecord, scopes: Scopes, patient: str | None) -> GrantRecord:
    context = GrantContext(
        patient=patient if pending.needs_patient() or pending.launch_patient else None,
        encounter=pending.launch_encounter if "launch/encounter" in scopes.others else None,
        fhir_user=user.fhir_user,
        auth_time=int(time.time()),
    )
    lifetime = (
        OFFLINE_REFRESH_SECONDS
        if "offline_access" in scopes.others
        else ONLINE_REFRESH_SECONDS
        if "online_access" in scopes.others
        else REQUEST_SECONDS
    )
    created = now_us()
    return GrantRecord(
        grant_id=uuid.uuid4().hex,
        client_id=pending.client_id,
        user_id=user.user_id,
        scope=scopes.text,
        context=context.to_json(),
        created_us=created,
        expires_us=created + lifetime * 1_000_000,
    )


# -- shared checks ---------------------------------------------------------------------------
async def _pending(
    ctx: OAuthContext, cookie: str | None, form: Mapping[str, str] | None
) -> tuple[AuthzRequestRecord, Pending]:
    """The browser's request; with a form, its CSRF token must be the current one."""
    record = await ctx.grants.request(token_digest(cookie), now_us()) if cookie else None
    if record is None:
        raise PageError(SESSION_LOST)
    if form is not None and not same(token_digest(form.get("csrf", "")), record.csrf_digest):
        raise PageError(SESSION_LOST, status=403)
    return record, Pending(**orjson.loads(record.params))


async def _signed_in(ctx: OAuthContext, record: AuthzRequestRecord) -> UserRecord:
    user = await ctx.grants.user(record.user_id) if record.user_id else None
    if user is None or user.disabled:
        raise PageError(SESSION_LOST, status=403)
    return user


async def _new_csrf(ctx: OAuthContext, record: AuthzRequestRecord) -> str:
    csrf = secrets.token_urlsafe(32)
    await ctx.grants.update_request(record.request_digest, csrf_digest=token_digest(csrf))
    return csrf
