"""Traffic control at the HTTP edge of `/fhir`: who pays for a request, what its tier allows.

`admit` runs once per FHIR request, right after the request is read: it authenticates the
caller (an anonymous caller becomes the public tier's anonymous principal when public types are
configured), takes the request's cost from the caller's budget (429 `throttled` past it, 503
`transient` when the shared store is down and the server fails closed), holds the principal to
its tier and contract, and fills the `Admission` whose RateLimit fields every response carries.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar
from urllib.parse import unquote

import orjson
from starlette.requests import Request

from santinel.auth import tiers
from santinel.auth.principal import Principal
from santinel.errors import FhirError, Forbidden, Unauthorized
from santinel.services.authn import unauthorized
from santinel.services.container import Container
from santinel.services.oauth.authorization import SIGN_IN_FAILED, PageError, Step
from santinel.services.oauth.errors import InvalidClient, TemporarilyUnavailable
from santinel.services.ratelimit.attempts import Subject
from santinel.services.ratelimit.costs import interaction_of, request_cost
from santinel.services.ratelimit.limiter import (
    Admission,
    LimiterUnavailable,
    Throttled,
    Ticket,
    TrafficControl,
)
from santinel.services.request import FhirRequest

T = TypeVar("T")

__all__ = ["Admission", "address_of", "admit"]

PUBLIC_ONLY = "The public tier only reads and searches."


async def admit(
    request: Request,
    container: Container,
    fhir_request: FhirRequest,
    admission: Admission,
    authenticating: Awaitable[Principal | None],
) -> FhirRequest:
    """The request with its (restricted) principal, once its cost is paid."""
    traffic = container.traffic
    address = address_of(request)
    try:
        principal = await authenticating
    except Unauthorized:
        # a token that fails is paid for by its address, like an anonymous request
        await traffic.spend(
            f"ip:{address}", traffic.tier_policy("public"), traffic.costs.read, admission
        )
        raise
    method, path = fhir_request.method, fhir_request.path
    interaction = interaction_of(method, path)
    cost = request_cost(traffic.costs, method, path, fhir_request.params, fhir_request.body)
    if principal is None:
        await traffic.spend(f"ip:{address}", traffic.tier_policy("public"), cost, admission)
        if traffic.public_types:
            principal = tiers.anonymous_principal(traffic.public_types)
    else:
        terms = await traffic.terms(principal.client_id, principal.tier)
        await traffic.spend(f"client:{principal.client_id}", terms.policy, cost, admission)
        principal = tiers.restrict(principal, terms.allowed_types, traffic.public_types)
        refused = tiers.purpose_denial(principal, terms.purposes)
        if refused is not None and interaction != "capabilities":
            raise Forbidden(f"The request is outside the client's contract: {refused}.")
    if _public_refuses(principal, interaction):
        raise unauthorized() if principal and principal.anonymous else Forbidden(PUBLIC_ONLY)
    return dataclasses.replace(fhir_request, principal=principal)


def _public_refuses(principal: Principal | None, interaction: str | None) -> bool:
    """A public-tier caller asks for more than a read or a search (a batch, a write, history)."""
    return (
        principal is not None
        and principal.tier == "public"
        and interaction is not None
        and interaction not in tiers.PUBLIC_INTERACTIONS
    )


def address_of(request: Request) -> str:
    """The caller's address (the peer, or what a trusted proxy reported: uvicorn's
    `forwarded_allow_ips`)."""
    return request.client.host if request.client else "unknown"


# -- the OAuth endpoints ----------------------------------------------------------------------
async def oauth_budget(container: Container, request: Request) -> None:
    """One unit of the caller's address budget for the OAuth endpoints (token, authorize,
    sign-in, introspection, revocation), or 429 `temporarily_unavailable`."""
    try:
        await _spend_oauth(container, request)
    except (Throttled, LimiterUnavailable) as refusal:
        raise as_oauth_error(refusal) from None


async def _spend_oauth(container: Container, request: Request) -> None:
    traffic = container.traffic
    await traffic.spend(f"oauth-ip:{address_of(request)}", traffic.oauth, 1)


async def client_attempt(
    container: Container,
    request: Request,
    form: Mapping[str, str],
    authorization: str | None,
    run: Callable[[], Awaitable[T]],
) -> T:
    """`run` a request that authenticates a client (token, introspection, revocation), counted
    against the presented client_id and the caller's address: `invalid_client` is a failure,
    an answer a success; any other error takes the attempt back without clearing anything
    (it checked no credential: it must not reset a client's failures)."""
    traffic = container.traffic
    address = address_of(request)
    subjects = [traffic.address(address)]
    client_id = presented_client_id(form, authorization)
    if client_id:
        subjects.insert(0, traffic.account("client", client_id))
    ticket = await _attempt(traffic, subjects, address)
    try:
        result = await run()
    except InvalidClient:
        traffic.failed(ticket)
        raise
    except BaseException:
        await traffic.taken_back(ticket)
        raise
    await traffic.succeeded(ticket)
    return result


async def sign_in_attempt(
    container: Container, request: Request, username: str, run: Callable[[], Awaitable[Step]]
) -> Step:
    """`run` a sign-in, counted against the username and the caller's address."""
    traffic = container.traffic
    address = address_of(request)
    subjects = [traffic.address(address)]
    if username.strip():
        subjects.insert(0, traffic.account("user", username[:200]))
    ticket = await _page_attempt(traffic, subjects, address)
    try:
        step = await run()
    except BaseException:
        await traffic.taken_back(ticket)
        raise
    if step.kind == "login" and step.error == SIGN_IN_FAILED:
        traffic.failed(ticket)
    elif step.kind in ("patient", "consent"):
        await traffic.succeeded(ticket)
    else:  # sent back to the app before any password was checked
        await traffic.taken_back(ticket)
    return step


async def page_budget(container: Container, request: Request) -> None:
    """`oauth_budget` for the HTML pages: a refusal becomes a `RefusedPage`."""
    try:
        await _spend_oauth(container, request)
    except (Throttled, LimiterUnavailable) as refusal:
        raise RefusedPage(refusal) from None


class RefusedPage(PageError):
    """A sign-in page refused by traffic control (429 or 503), shown with `Retry-After`."""

    def __init__(self, refusal: FhirError) -> None:
        super().__init__(refusal.diagnostics, refusal.status)
        self.headers = dict(refusal.headers)


def as_oauth_error(refusal: FhirError) -> TemporarilyUnavailable:
    return TemporarilyUnavailable(refusal.diagnostics, refusal.status, dict(refusal.headers))


def presented_client_id(form: Mapping[str, str], authorization: str | None) -> str | None:
    """The client_id a request claims (not verified): HTTP Basic, the form, or the `iss` of a
    client assertion."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return unquote(decoded.partition(":")[0])[:200] or None
    if form.get("client_id"):
        return form["client_id"][:200]
    assertion = form.get("client_assertion", "")
    if assertion.count(".") == 2:
        payload = assertion.split(".")[1]
        try:
            claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (binascii.Error, ValueError):
            return None
        issuer = claims.get("iss") if isinstance(claims, dict) else None
        return issuer[:200] if isinstance(issuer, str) and issuer else None
    return None


async def _attempt(traffic: TrafficControl, subjects: list[Subject], address: str) -> Ticket:
    try:
        return await traffic.begin_attempt(subjects, address)
    except (Throttled, LimiterUnavailable) as refusal:
        raise as_oauth_error(refusal) from None


async def _page_attempt(traffic: TrafficControl, subjects: list[Subject], address: str) -> Ticket:
    try:
        return await traffic.begin_attempt(subjects, address)
    except (Throttled, LimiterUnavailable) as refusal:
        raise RefusedPage(refusal) from None
