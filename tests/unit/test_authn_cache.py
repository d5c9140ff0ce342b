"""The authenticator's cache of verified tokens keeps every security property of verifying each
request: expiry, issuer and audience, signing key, revocation and client state (within
STATE_TTL), and a bounded size; and it reads the token state once, not once per request."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from starlette.requests import Request

from santinel.crypto.jwt import CLOCK_SKEW_SECONDS, KeyRing, SigningKey, Verifier
from santinel.errors import Unauthorized
from santinel.services import authn
from santinel.services.authn import STATE_TTL, Authenticator
from santinel.settings import Settings
from santinel.storage.auth_records import ClientRecord
from santinel.web import oauth
from santinel.web.app import token_issuer_audience
from santinel.web.public_url import fhir_base

ISSUER = "https://santinel.test"
AUDIENCE = "https://santinel.test/fhir"
T0 = 1_900_000_000.0


class Clock:
    """Both clocks of the authenticator, moved by hand."""

    def __init__(self) -> None:
        self.wall = T0
        self.mono = 1_000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


class FakeStore:
    """The two reads the authenticator makes, counted; `gate` holds them while it is clear."""

    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.clients: dict[str, ClientRecord] = {}
        self.reads = 0
        self.gate = asyncio.Event()
        self.gate.set()

    def add(self, client_id: str, *, disabled: bool = False) -> None:
        self.clients[client_id] = ClientRecord(
            client_id, "tests", "internal", "system/*.rs", "client_secret_basic", disabled=disabled
        )

    async def is_recorded(self, kind: str, token_id: str) -> bool:
        self.reads += 1
        await self.gate.wait()
        return kind == "revoked" and token_id in self.revoked

    async def client(self, client_id: str) -> ClientRecord | None:
        await self.gate.wait()
        return self.clients.get(client_id)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(authn, "wall_clock", lambda: clock.wall)
    monkeypatch.setattr(authn, "monotonic", lambda: clock.mono)
    return clock


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens the authenticator verified (signature and claims), in order."""
    seen: list[str] = []
    real = Verifier.verify

    def counting(self: Verifier, token: str, now: int | None = None) -> dict[str, Any]:
        seen.append(token)
        return real(self, token, now)

    monkeypatch.setattr(Verifier, "verify", counting)
    return seen


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing([SigningKey.generate("k1")])


@pytest.fixture
def store() -> FakeStore:
    store = FakeStore()
    store.add("c1")
    return store


@pytest.fixture
def authenticator(ring: KeyRing, store: FakeStore) -> Authenticator:
    return Authenticator(ring, store)  # type: ignore[arg-type]


def token(ring: KeyRing, *, lifetime: int = 300, client_id: str = "c1", **extra: Any) -> str:
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": client_id,
        "client_id": client_id,
        "scope": "system/Patient.rs",
        "tier": "internal",
        "jti": uuid.uuid4().hex,
        "iat": int(T0),
        "exp": int(T0) + lifetime,
        **extra,
    }
    return "Bearer " + ring.sign(claims, "at+jwt")


def principal(
    authenticator: Authenticator, bearer: str, issuer: str = ISSUER, audience: str = AUDIENCE
) -> Any:
    return asyncio.run(authenticator.principal(bearer, issuer, audience))


def refused(
    authenticator: Authenticator, bearer: str, issuer: str = ISSUER, audience: str = AUDIENCE
) -> bool:
    try:
        principal(authenticator, bearer, issuer, audience)
    except Unauthorized:
        return True
    return False


def test_a_cached_token_is_verified_once_and_keeps_its_principal(
    authenticator: Authenticator, ring: KeyRing, clock: Clock, verifications: list[str]
) -> None:
    bearer = token(ring)
    first = principal(authenticator, bearer)
    for _ in range(5):
        clock.advance(0.1)
        assert principal(authenticator, bearer) is first
    assert len(verifications) == 1
    assert first.client_id == "c1"
    assert [s.text() for s in first.scopes.resources] == ["system/Patient.rs"]


def test_an_expired_cached_token_is_refused(
    authenticator: Authenticator, ring: KeyRing, clock: Clock, verifications: list[str]
) -> None:
    bearer = token(ring, lifetime=60)
    principal(authenticator, bearer)
    clock.advance(59)
    principal(authenticator, bearer)
    assert len(verifications) == 1
    clock.advance(1)  # at `exp`: no longer served from the cache, verified again...
    principal(authenticator, bearer)  # ...which tolerates the verifier's clock skew
    assert len(verifications) == 2
    clock.advance(CLOCK_SKEW_SECONDS + 1)
    assert refused(authenticator, bearer)
    assert not authenticator._tokens  # the refused token is no longer kept


def test_a_token_is_cached_for_its_issuer_and_audience_only(
    authenticator: Authenticator, ring: KeyRing, clock: Clock
) -> None:
    bearer = token(ring)
    principal(authenticator, bearer)
    assert refused(authenticator, bearer, audience="https://other.test/fhir")
    assert refused(authenticator, bearer, issuer="https://other.test")
    principal(authenticator, bearer)  # still good where it belongs


def test_a_revoked_cached_token_is_refused_within_the_state_ttl(
    authenticator: Authenticator, store: FakeStore, ring: KeyRing, clock: Clock
) -> None:
    bearer = token(ring)
    jti = principal(authenticator, bearer).token_id
    store.revoked.add(jti)
    clock.advance(STATE_TTL - authn.REFRESH_AHEAD - 0.01)
    principal(authenticator, bearer)  # the answer read less than STATE_TTL ago may still serve
    clock.advance(authn.REFRESH_AHEAD + 0.02)  # now STATE_TTL has passed since that read
    assert refused(authenticator, bearer)
    clock.advance(60)
    assert refused(authenticator, bearer)


def test_a_disabled_client_is_refused_within_the_state_ttl_and_back_when_enabled(
    authenticator: Authenticator, store: FakeStore, ring: KeyRing, clock: Clock
) -> None:
    bearer = token(ring)
    principal(authenticator, bearer)
    store.add("c1", disabled=True)
    clock.advance(STATE_TTL)
    assert refused(authenticator, bearer)
    store.add("c1", disabled=False)
    clock.advance(STATE_TTL)
    principal(authenticator, bearer)
    del store.clients["c1"]
    clock.advance(STATE_TTL)
    assert refused(authenticator, bearer)


def test_the_state_is_read_once_for_concurrent_requests(
    authenticator: Authenticator, store: FakeStore, ring: KeyRing, clock: Clock
) -> None:
    bearer = token(ring)

    async def many() -> list[Any]:
        store.gate.clear()
        requests = [
            asyncio.ensure_future(authenticator.principal(bearer, ISSUER, AUDIENCE))
            for _ in range(16)
        ]
        await asyncio.sleep(0.01)
        assert not any(r.done() for r in requests)  # nobody is served before the state is read
        store.gate.set()
        return await asyncio.gather(*requests)

    assert len({id(p) for p in asyncio.run(many())}) == 1
    assert store.reads == 1


def test_the_state_is_read_again_ahead_without_holding_requests(
    authenticator: Authenticator, store: FakeStore, ring: KeyRing, clock: Clock
) -> None:
    bearer = token(ring)

    async def run() -> None:
        await authenticator.principal(bearer, ISSUER, AUDIENCE)
        assert store.reads == 1
        clock.advance(STATE_TTL - authn.REFRESH_AHEAD / 2)
        store.gate.clear()
        store.revoked.add(next(iter(authenticator._tokens.values())).jti)
        # the answer is still fresh: served at once, while the next read starts
        await asyncio.wait_for(authenticator.principal(bearer, ISSUER, AUDIENCE), 1)
        await asyncio.sleep(0)
        assert store.reads == 2
        store.gate.set()
        await asyncio.sleep(0.01)
        with pytest.raises(Unauthorized):  # the read ahead saw the revocation
            await authenticator.principal(bearer, ISSUER, AUDIENCE)
        assert store.reads == 2

    asyncio.run(run())


def test_a_cached_token_whose_key_left_the_ring_is_refused(
    authenticator: Authenticator, ring: KeyRing, clock: Clock, verifications: list[str]
) -> None:
    bearer = token(ring)
    principal(authenticator, bearer)
    ring.keys = [*ring.keys, SigningKey.generate("k2")]  # a reload that keeps k1
    principal(authenticator, bearer)
    assert len(verifications) == 1
    ring.keys = [k for k in ring.keys if k.kid != "k1"]  # k1 withdrawn
    assert refused(authenticator, bearer)


def test_the_cache_is_bounded(
    authenticator: Authenticator, ring: KeyRing, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(authn, "CACHE_SIZE", 3)
    bearers = [token(ring) for _ in range(5)]
    for bearer in bearers:
        principal(authenticator, bearer)
    kept = [key[0] for key in authenticator._tokens]
    assert kept == [b.removeprefix("Bearer ") for b in bearers[2:]]


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer  ", "Basic abc", "bearer a.b.c", "Bearer x"]
)
def test_a_missing_or_malformed_bearer_is_refused(
    authenticator: Authenticator, clock: Clock, authorization: str | None
) -> None:
    with pytest.raises(Unauthorized):
        asyncio.run(authenticator.principal(authorization, ISSUER, AUDIENCE))


# -- the issuer and audience the web layer asks for ---------------------------------------------


@pytest.mark.parametrize("public_base_url", [None, "https://fhir.example/fhir/", "https://x.test"])
@pytest.mark.parametrize(
    ("scheme", "host", "server"),
    [
        ("http", b"127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("https", b"Santinel.Example", ("10.0.0.1", 443)),
        ("http", b"example.test:80", ("127.0.0.1", 80)),
        ("https", None, ("10.0.0.1", 443)),
        ("http", None, ("10.0.0.1", 8443)),
        ("http", b"[::1]:8080", ("::1", 8080)),
        ("http", b"evil.test/path?x#y", ("127.0.0.1", 8080)),
        ("http", b"bad host:abc", ("127.0.0.1", 8080)),
        ("http", b"", ("127.0.0.1", 8080)),
    ],
)
def test_requests_ask_for_the_issuer_and_audience_the_token_endpoint_uses(
    public_base_url: str | None, scheme: str, host: bytes | None, server: tuple[str, int]
) -> None:
    settings = Settings(public_base_url=public_base_url)
    headers = [(b"authorization", b"Bearer t")]
    if host is not None:
        headers.insert(0, (b"host", host))
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": scheme,
        "path": "/fhir/Patient/1",
        "raw_path": b"/fhir/Patient/1",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "server": server,
    }
    endpoints = oauth.endpoints_for(Request(scope), settings)
    expected = (endpoints.issuer, endpoints.fhir_base)
    assert token_issuer_audience(Request(scope), settings) == expected
    given = fhir_base(Request(scope), settings)  # what handle_fhir passes (FhirRequest.base_url)
    assert token_issuer_audience(Request(scope), settings, given) == expected
