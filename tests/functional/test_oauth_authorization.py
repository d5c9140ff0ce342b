"""The authorization code flow (SMART standalone and EHR launch), refresh tokens, introspection,
revocation, OpenID Connect and CORS, over real HTTP on both backends — with its attacks."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pyotp
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from santinel.cli.store import grant_store
from santinel.services.oauth.users import create_launch
from tests.auth import register_client, register_public_client, register_user
from tests.services import LiveServer
from tests.smart_browser import AuthorizationRun

PASSWORD = "correct horse battery staple"
APP = "http://127.0.0.1:9/app/callback"
APP_ORIGIN = "http://127.0.0.1:9"
PATIENT_SCOPE = "launch/patient patient/*.rs openid fhirUser offline_access"


class World:
    """Two patients with observations, a patient user, a practitioner user, a public app."""

    def __init__(self, server: LiveServer, client: httpx.Client) -> None:
        self.server = server
        self.a = self._patient(client, "Alpha")
        self.b = self._patient(client, "Bravo")
        for pid in (self.a, self.b):
            obs = {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "weight"},
                "subject": {"reference": f"Patient/{pid}"},
            }
            assert client.post("/Observation", json=obs).status_code == 201
        tag = uuid.uuid4().hex[:8]
        self.alice = f"alice-{tag}"
        register_user(server.settings, self.alice, PASSWORD, f"Patient/{self.a}")
        self.doctor = f"doctor-{tag}"
        register_user(server.settings, self.doctor, PASSWORD, "Practitioner/p1")
        self.app = register_public_client(
            server.settings, [APP], f"{PATIENT_SCOPE} launch launch/encounter user/*.rs"
        )

    @staticmethod
    def _patient(client: httpx.Client, family: str) -> str:
        body = {"resourceType": "Patient", "name": [{"family": f"{family}{uuid.uuid4().hex[:6]}"}]}
        response = client.post("/Patient", json=body)
        assert response.status_code == 201
        return str(response.json()["id"])

    def run(self, scope: str = PATIENT_SCOPE, **fields: Any) -> AuthorizationRun:
        return AuthorizationRun(
            self.server.url, self.server.base, fields.pop("client_id", self.app), APP, scope
        )


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    with httpx.Client(base_url=server.base, auth=server.auth, timeout=30) as client:
        return World(server, client)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tokens(world: World, run: AuthorizationRun, username: str | None = None) -> dict[str, Any]:
    code = run.code(username or world.alice, PASSWORD)
    response = run.exchange(code)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


# -- the happy paths ------------------------------------------------------------------------
def test_standalone_launch_as_a_patient(world: World, server: LiveServer) -> None:
    run = world.run()
    page = run.open()
    assert page.status_code == 200
    assert "<script" not in page.text  # no script at all, inline or not
    assert "form-action 'self' http://127.0.0.1:9" in page.headers["content-security-policy"]
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert 'for="username"' in page.text  # labelled fields (accessibility)
    consent = run.login(world.alice, PASSWORD)
    assert consent.status_code == 200
    assert 'id="approve"' in consent.text  # a patient never sees the patient picker
    run.approve()
    params = run.redirect_params()
    assert params["state"] == run.state
    assert params["iss"] == server.url
    response = run.exchange(params["code"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["patient"] == world.a
    assert body["token_type"] == "Bearer"
    assert set(body["scope"].split()) == set(PATIENT_SCOPE.split())
    assert body["refresh_token"]
    id_claims = jwt.decode(body["id_token"], _jwks(server)).claims
    assert id_claims["aud"] == world.app
    assert id_claims["fhirUser"] == f"{server.base}/Patient/{world.a}"
    assert id_claims["iss"] == server.url
    headers = bearer(body["access_token"])
    own = httpx.get(f"{server.base}/Patient/{world.a}", headers=headers)
    assert own.status_code == 200
    other = httpx.get(f"{server.base}/Patient/{world.b}", headers=headers)
    assert other.status_code == 404
    found = httpx.get(f"{server.base}/Observation", headers=headers).json()
    subjects = {e["resource"]["subject"]["reference"] for e in found.get("entry", [])}
    assert subjects == {f"Patient/{world.a}"}


def test_the_user_approves_a_subset_of_the_scopes(world: World) -> None:
    run = world.run()
    run.open()
    run.login(world.alice, PASSWORD)
    run.approve(["launch/patient", "patient/Patient.rs"])
    response = run.exchange(run.redirect_params()["code"])
    body = response.json()
    assert body["scope"].split() == ["patient/Patient.rs", "launch/patient"]
    assert "refresh_token" not in body  # offline_access was not approved
    assert "id_token" not in body


def test_denying_redirects_with_access_denied(world: World) -> None:
    run = world.run()
    run.open()
    run.login(world.alice, PASSWORD)
    run.submit("/oauth/consent", {"decision": "deny"})
    params = run.redirect_params()
    assert params["error"] == "access_denied"
    assert params["state"] == run.state
    assert "code" not in params


def test_a_practitioner_picks_the_patient(world: World) -> None:
    run = world.run()
    run.open()
    picker = run.login(world.doctor, PASSWORD)
    assert f'id="patient-{world.b}"' in picker.text
    consent = run.submit("/oauth/patient", {"patient": world.b})
    assert 'id="approve"' in consent.text
    run.approve()
    body = run.exchange(run.redirect_params()["code"]).json()
    assert body["patient"] == world.b


def test_picking_a_patient_that_does_not_exist_is_refused(world: World) -> None:
    run = world.run()
    run.open()
    run.login(world.doctor, PASSWORD)
    again = run.submit("/oauth/patient", {"patient": "no-such-patient"})
    assert 'id="choose-patient"' in again.text
    assert 'role="alert"' in again.text


def test_ehr_launch_carries_the_ehr_context(world: World, server: LiveServer) -> None:
    async def launch() -> str:
        async with grant_store(server.settings) as store:
            return await create_launch(store, world.b, "enc-1")

    value = asyncio.run(launch())
    run = world.run("launch launch/encounter patient/*.rs")
    run.open(launch=value)
    consent = run.login(world.doctor, PASSWORD)
    assert 'id="approve"' in consent.text  # the EHR chose the patient: no picker
    run.approve()
    body = run.exchange(run.redirect_params()["code"]).json()
    assert body["patient"] == world.b
    assert body["encounter"] == "enc-1"


def test_an_unknown_launch_is_refused(world: World) -> None:
    run = world.run("launch patient/*.rs")
    run.open(launch="forged")
    assert run.redirect_params()["error"] == "invalid_request"


def test_totp_second_factor(world: World, server: LiveServer) -> None:
    name = f"totp-{uuid.uuid4().hex[:8]}"
    register_user(server.settings, name, PASSWORD, f"Patient/{world.a}", totp=True)

    async def secret() -> str:
        async with grant_store(server.settings) as store:
            user = await store.user_named(name)
            assert user is not None
            return str(user.totp_secret)

    totp = pyotp.TOTP(asyncio.run(secret()))
    run = world.run()
    run.open()
    assert run.login(name, PASSWORD).status_code == 401  # the password alone is not enough
    assert (
        run.login(name, PASSWORD, totp="000000" if totp.now() != "000000" else "111111").status_code
        == 401
    )
    assert 'id="approve"' in run.login(name, PASSWORD, totp=totp.now()).text


# -- attacks on the authorization request -------------------------------------------------------
@pytest.mark.parametrize(
    "redirect_uri",
    [
        APP + "/",
        APP + "?x=1",
        APP.upper(),
        APP.replace("http://", "https://"),
        APP.replace(":9", ":10"),
        "http://127.0.0.1:9/app/callback/../callback",
        "http://127.0.0.1:9/app",
        "http://evil.example/app/callback",
        "",
    ],
)
def test_redirect_uri_variants_are_refused_without_redirect(
    world: World, redirect_uri: str
) -> None:
    run = world.run()
    page = run.open(redirect_uri=redirect_uri)
    assert page.status_code == 400
    assert "location" not in page.headers
    assert "redirect_uri" in page.text


def test_an_unknown_client_is_refused_without_redirect(world: World) -> None:
    page = world.run(client_id="nobody").open()
    assert page.status_code == 400
    assert "location" not in page.headers


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"aud": "https://other.example/fhir"}, "invalid_request"),
        ({"aud": None}, "invalid_request"),
        ({"state": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "system/*.cruds"}, "invalid_scope"),
    ],
)
def test_bad_requests_go_back_to_the_app_with_an_error(
    world: World, override: dict[str, str | None], error: str
) -> None:
    run = world.run()
    run.open(**override)
    params = run.redirect_params()
    assert params["error"] == error
    assert "code" not in params


def test_wrong_password_and_unknown_user_look_the_same(world: World) -> None:
    run = world.run()
    run.open()
    wrong = run.login(world.alice, "not the password at all")
    unknown = run.login("nobody-at-all", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.text.split('name="csrf"')[0] == unknown.text.split('name="csrf"')[0]


def test_repeated_failures_end_the_request(world: World) -> None:
    run = world.run()
    run.open()
    for _ in range(5):
        assert run.login(world.alice, "wrong password!!").status_code == 401
    run.login(world.alice, PASSWORD)
    assert run.redirect_params()["error"] == "access_denied"


def test_forms_need_the_cookie_and_the_csrf_token(world: World, server: LiveServer) -> None:
    run = world.run()
    run.open()
    no_csrf = run.browser.post(
        f"{server.url}/oauth/login", data={"username": world.alice, "password": PASSWORD}
    )
    assert no_csrf.status_code == 403
    other_browser = httpx.post(
        f"{server.url}/oauth/login",
        data={"username": world.alice, "password": PASSWORD, "csrf": "x"},
    )
    assert other_browser.status_code == 400


def test_a_consent_cannot_be_submitted_twice(world: World) -> None:
    run = world.run()
    run.open()
    consent = run.login(world.alice, PASSWORD)
    run.approve()
    run.pages.append(consent)  # resubmit the same page
    again = run.approve()
    assert again.status_code == 400


# -- attacks on the code exchange ---------------------------------------------------------------
def test_a_replayed_code_revokes_what_the_first_exchange_issued(
    world: World, server: LiveServer
) -> None:
    run = world.run()
    code = run.code(world.alice, PASSWORD)
    first = run.exchange(code).json()
    replay = run.exchange(code)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    refreshed = httpx.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": world.app,
        },
    )
    assert refreshed.status_code == 400
    time.sleep(2.1)  # the authenticator re-checks revocations every 2 s
    read = httpx.get(f"{server.base}/Patient/{world.a}", headers=bearer(first["access_token"]))
    assert read.status_code == 401


@pytest.mark.parametrize(
    "override",
    [
        {"code_verifier": None},
        {"code_verifier": "x" * 43},
        {"code_verifier": "short"},
        {"redirect_uri": APP + "/"},
        {"redirect_uri": None},
        {"client_id": "someone-else"},
        {"code": "forged-code"},
    ],
)
def test_code_exchange_attacks(world: World, override: dict[str, str | None]) -> None:
    run = world.run()
    fields = dict(override)  # the parameter is shared by both backends' runs
    code = str(fields.pop("code", None) or run.code(world.alice, PASSWORD))
    response = run.exchange(code, **fields)
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("invalid_grant", "invalid_client")
    assert "access_token" not in response.json()


def test_a_code_is_bound_to_its_client(world: World, server: LiveServer) -> None:
    other = register_public_client(server.settings, [APP], PATIENT_SCOPE)
    run = world.run()
    code = run.code(world.alice, PASSWORD)
    stolen = run.exchange(code, client_id=other)
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"


# -- refresh tokens -------------------------------------------------------------------------
def refresh(server: LiveServer, client_id: str, token: str, **extra: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id}
    return httpx.post(f"{server.url}/oauth/token", data={**data, **extra})


def test_refresh_rotates_and_reuse_revokes_the_grant(world: World, server: LiveServer) -> None:
    first = tokens(world, world.run())
    second = refresh(server, world.app, first["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["patient"] == world.a
    reuse = refresh(server, world.app, first["refresh_token"])
    assert reuse.json()["error"] == "invalid_grant"
    # the whole grant is gone, including the rotated token
    assert refresh(server, world.app, rotated["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_public_client_may_refresh_without_naming_itself(
    world: World, server: LiveServer
) -> None:
    """What the JavaScript SMART client sends by default (RFC 6749 §6 allows it)."""
    first = tokens(world, world.run())
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    response = httpx.post(f"{server.url}/oauth/token", data=data)
    assert response.status_code == 200, response.text
    assert response.json()["patient"] == world.a


def test_refresh_may_only_narrow(world: World, server: LiveServer) -> None:
    first = tokens(world, world.run())
    narrowed = refresh(server, world.app, first["refresh_token"], scope="patient/Patient.rs")
    assert narrowed.json()["scope"] == "patient/Patient.rs"
    wider = refresh(server, world.app, narrowed.json()["refresh_token"], scope="user/*.cruds")
    assert wider.status_code == 400
    assert wider.json()["error"] == "invalid_scope"


def test_a_refresh_token_is_bound_to_its_client(world: World, server: LiveServer) -> None:
    first = tokens(world, world.run())
    other = register_public_client(server.settings, [APP], PATIENT_SCOPE)
    assert refresh(server, other, first["refresh_token"]).json()["error"] == "invalid_grant"
    assert refresh(server, world.app, first["refresh_token"]).status_code == 200


# -- introspection and revocation -------------------------------------------------------------
def test_introspection(world: World, server: LiveServer) -> None:
    issued = tokens(world, world.run())
    resource_server = register_client(server.settings, "system/Patient.rs")
    url = f"{server.url}/oauth/introspect"
    active = httpx.post(url, data={"token": issued["access_token"]}, auth=resource_server)
    assert active.status_code == 200
    body = active.json()
    assert body["active"] is True
    assert body["patient"] == world.a
    assert body["client_id"] == world.app
    refresh_info = httpx.post(url, data={"token": issued["refresh_token"]}, auth=resource_server)
    assert refresh_info.json()["active"] is True
    for garbage in ("nope", issued["access_token"][:-4] + "AAAA", "a.b.c"):
        inactive = httpx.post(url, data={"token": garbage}, auth=resource_server)
        assert inactive.json() == {"active": False}
    anonymous = httpx.post(url, data={"token": issued["access_token"]})
    assert anonymous.status_code == 401
    public = httpx.post(url, data={"token": issued["access_token"], "client_id": world.app})
    assert public.status_code == 401


def test_revocation(world: World, server: LiveServer) -> None:
    issued = tokens(world, world.run())
    url = f"{server.url}/oauth/revoke"
    unknown = httpx.post(url, data={"token": "never-issued", "client_id": world.app})
    assert unknown.status_code == 200
    other = register_public_client(server.settings, [APP], PATIENT_SCOPE)
    foreign = httpx.post(url, data={"token": issued["refresh_token"], "client_id": other})
    assert foreign.status_code == 200  # no oracle, and nothing revoked:
    assert refresh(server, world.app, issued["refresh_token"]).status_code == 200
    issued = tokens(world, world.run())
    revoked = httpx.post(url, data={"token": issued["access_token"], "client_id": world.app})
    assert revoked.status_code == 200
    time.sleep(2.1)
    read = httpx.get(f"{server.base}/Patient/{world.a}", headers=bearer(issued["access_token"]))
    assert read.status_code == 401
    httpx.post(url, data={"token": issued["refresh_token"], "client_id": world.app})
    assert refresh(server, world.app, issued["refresh_token"]).json()["error"] == "invalid_grant"


def test_an_id_token_is_not_an_access_token(world: World, server: LiveServer) -> None:
    issued = tokens(world, world.run())
    read = httpx.get(f"{server.base}/Patient/{world.a}", headers=bearer(issued["id_token"]))
    assert read.status_code == 401


# -- discovery and CORS -------------------------------------------------------------------------
def test_discovery_documents(server: LiveServer) -> None:
    smart = httpx.get(f"{server.base}/.well-known/smart-configuration").json()
    assert smart["authorization_endpoint"] == f"{server.url}/oauth/authorize"
    assert smart["revocation_endpoint"] == f"{server.url}/oauth/revoke"
    assert smart["introspection_endpoint"] == f"{server.url}/oauth/introspect"
    assert "authorization_code" in smart["grant_types_supported"]
    assert "launch-standalone" in smart["capabilities"]
    openid = httpx.get(f"{server.url}/.well-known/openid-configuration").json()
    assert openid["issuer"] == server.url
    metadata = httpx.get(f"{server.base}/metadata").json()
    security = metadata["rest"][0]["security"]
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris["authorize"] == f"{server.url}/oauth/authorize"
    assert uris["token"] == f"{server.url}/oauth/token"


def test_cors_allows_registered_origins_only(world: World, server: LiveServer) -> None:
    preflight = {"Origin": APP_ORIGIN, "Access-Control-Request-Method": "GET"}
    preflight["Access-Control-Request-Headers"] = "authorization"
    time.sleep(5.1)  # a client registered in this module is seen within ORIGINS_TTL
    allowed = httpx.options(f"{server.base}/Patient", headers=preflight)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "Authorization" in allowed.headers["access-control-allow-headers"]
    evil = httpx.options(
        f"{server.base}/Patient", headers={**preflight, "Origin": "http://evil.example"}
    )
    assert evil.status_code == 403
    assert "access-control-allow-origin" not in evil.headers
    actual = httpx.get(f"{server.base}/metadata", headers={"Origin": APP_ORIGIN})
    assert actual.headers["access-control-allow-origin"] == APP_ORIGIN
    token = httpx.options(f"{server.url}/oauth/token", headers=preflight)
    assert token.status_code == 204
    login_page = httpx.options(f"{server.url}/oauth/login", headers=preflight)
    assert "access-control-allow-origin" not in login_page.headers


def _jwks(server: LiveServer) -> KeySet:
    return KeySet.import_key_set(httpx.get(f"{server.url}/.well-known/jwks.json").json())
