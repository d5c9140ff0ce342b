"""Rate limits, quotas, API tiers and brute-force protection over real HTTP (issue 6).

The servers here are the module's own (SQLite), with small limits; each test uses its own
clients, and its own loopback source address (127.0.0.x) wherever a budget is per address."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import update

from santinel.cli.store import auth_store
from santinel.settings import Settings
from santinel.storage.sql.tables import oauth_client
from tests.auth import register_client, register_public_client, register_user
from tests.services import LiveServer
from tests.smart_browser import AuthorizationRun

FHIR = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
ADDRESSES = (f"127.0.0.{n}" for n in itertools.count(20))
PASSWORD = "correct horse battery staple"
APP = "http://127.0.0.1:9/app/callback"


def limited_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "rate_limit_public": "30/minute",
        "quota_public": "1000/day",
        "brute_force_slow_after": 3,
        "brute_force_lock_after": 5,
        "brute_force_ip_slow_after": 6,
        "brute_force_ip_lock_after": 8,
        "brute_force_lock_seconds": 60,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(limited_settings(tmp_path_factory.mktemp("traffic"))) as live:
        yield live


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, headers=FHIR, auth=server.auth, timeout=30) as http:
        yield http


def from_address(address: str | None = None, **kwargs: Any) -> httpx.Client:
    """A client whose connections come from their own loopback address."""
    transport = httpx.HTTPTransport(local_address=address or next(ADDRESSES))
    return httpx.Client(transport=transport, timeout=30, **kwargs)


def register(
    server: LiveServer, tier: str = "internal", scope: str = "system/*.cruds", **fields: Any
) -> tuple[str, str]:
    return register_client(server.settings, scope, tier, **fields)


def token_request(
    http: httpx.Client, server: LiveServer, credentials: tuple[str, str], **form: str
) -> httpx.Response:
    data = {"grant_type": "client_credentials", "scope": "system/*.rs", **form}
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    return http.post(f"{server.url}/oauth/token", auth=credentials, data=data, headers=form_type)


@contextlib.contextmanager
def fhir_client(
    server: LiveServer, credentials: tuple[str, str], **form: str
) -> Iterator[httpx.Client]:
    """A client of the FHIR API with a token of `credentials`, from its own address."""
    with from_address(base_url=server.base, headers=FHIR) as http:
        response = token_request(http, server, credentials, scope="system/*.cruds", **form)
        assert response.status_code == 200, response.text
        http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        yield http


def remaining(response: httpx.Response) -> int:
    first = response.headers["ratelimit"].split(",")[0]
    return int(first.split(";r=")[1].split(";")[0])


def assert_throttled(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["issue"][0]["code"] == "throttled"
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    assert f";r=0;t={retry_after}" in response.headers["ratelimit"]
    return retry_after


# -- rate limits and quotas ----------------------------------------------------------------------
def test_every_response_carries_the_ratelimit_fields_and_pays_its_cost(server: LiveServer) -> None:
    with fhir_client(server, register(server, rate_limit="100/hour")) as http:
        read = http.get("/Patient/nobody")
        assert read.status_code == 404  # an error response pays and says so too
        assert read.headers["ratelimit-policy"] == '"rate";q=100;w=3600'
        assert remaining(read) == 99
        search = http.get(
            "/Observation",
            params=[("_include", "Observation:subject"), ("_revinclude", "Provenance:target")],
        )
        assert remaining(search) == 99 - 4  # search 2 + 1 per include
        created = http.post("/Organization", json={"resourceType": "Organization", "name": "x"})
        assert created.status_code == 201
        assert remaining(created) == 95 - 5
        entries = [{"request": {"method": "GET", "url": "Organization"}}] * 2 + [
            {
                "request": {"method": "POST", "url": "Organization"},
                "resource": {"resourceType": "Organization", "name": "y"},
            }
        ]
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries}
        batch = http.post("/", json=bundle)
        assert batch.status_code == 200
        assert remaining(batch) == 90 - (2 * 1 + 5)
        assert http.get("/metadata").headers["ratelimit"].startswith('"rate";r=82;t=')


def test_over_its_rate_a_client_gets_429_throttled_with_retry_after(server: LiveServer) -> None:
    with fhir_client(server, register(server, rate_limit="3/hour")) as http:
        for _ in range(3):
            assert http.get("/Organization/none").status_code == 404
        retry_after = assert_throttled(http.get("/Organization/none"))
        assert retry_after == 1200  # one unit every 20 minutes
        assert "rate limit" in http.get("/Organization/none").json()["issue"][0]["diagnostics"]


def test_a_quota_applies_beside_the_rate(server: LiveServer) -> None:
    with fhir_client(server, register(server, rate_limit="100/second", quota="5/day")) as http:
        for _ in range(5):
            assert http.get("/Organization/none").status_code == 404
        refused = http.get("/Organization/none")
        assert_throttled(refused)
        assert "quota" in refused.json()["issue"][0]["diagnostics"]
        assert refused.headers["ratelimit-policy"] == '"rate";q=100;w=1, "quota";q=5;w=86400'


def test_a_client_without_its_own_limits_gets_its_tiers_defaults(server: LiveServer) -> None:
    with fhir_client(server, register(server, tier="partner")) as http:
        response = http.get("/Organization/none")
        assert response.headers["ratelimit-policy"] == '"rate";q=600;w=60, "quota";q=100000;w=86400'


def test_a_throttled_client_does_not_run_its_request(
    server: LiveServer, admin: httpx.Client
) -> None:
    name = f"never-{uuid.uuid4().hex[:8]}"
    with fhir_client(server, register(server, rate_limit="5/hour")) as http:
        assert http.post("/Organization", json={"resourceType": "Organization"}).status_code == 201
        refused = http.post("/Organization", json={"resourceType": "Organization", "name": name})
        assert_throttled(refused)
    assert admin.get("/Organization", params={"name": name}).json().get("total") == 0


# -- the public tier -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def organization(admin: httpx.Client) -> str:
    created = admin.post("/Organization", json={"resourceType": "Organization", "name": "Public"})
    patient = {
        "resourceType": "Patient",
        "managingOrganization": {"reference": f"Organization/{created.json()['id']}"},
        "name": [{"family": "Hidden"}],
    }
    assert admin.post("/Patient", json=patient).status_code == 201
    return str(created.json()["id"])


def test_anyone_reads_and_searches_the_public_types_without_a_token(
    server: LiveServer, organization: str
) -> None:
    with from_address(base_url=server.base, headers=FHIR) as anonymous:
        read = anonymous.get(f"/Organization/{organization}")
        assert read.status_code == 200
        assert read.headers["ratelimit-policy"] == '"rate";q=30;w=60, "quota";q=1000;w=86400'
        found = anonymous.get("/Organization", params={"_id": organization})
        assert found.json()["total"] == 1
        assert anonymous.get("/PractitionerRole").status_code == 200


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/Patient"),
        ("GET", "/Observation"),
        ("GET", "/?_type=Organization,Patient"),
        ("GET", "/Organization?_revinclude=Patient:organization"),
        ("GET", "/Organization?_has:Patient:organization:family=Hidden"),
        (
            "GET",
            "/Practitioner?_has:PractitionerRole:practitioner:_has:Encounter:participant:status=finished",
        ),
        ("GET", "/Organization/_history"),
        ("GET", "/_history"),
        ("POST", "/Organization"),
    ],
)
def test_anonymous_callers_reach_no_patient_data_and_no_write_by_any_path(
    server: LiveServer, organization: str, method: str, url: str
) -> None:
    with from_address(base_url=server.base, headers=FHIR) as anonymous:
        body = {"resourceType": "Organization"} if method == "POST" else None
        response = anonymous.request(method, url, json=body)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert "Hidden" not in response.text


def test_an_anonymous_batch_is_refused_even_of_public_reads(server: LiveServer) -> None:
    entry = {"request": {"method": "GET", "url": "Organization"}}
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [entry]}
    with from_address(base_url=server.base, headers=FHIR) as anonymous:
        assert anonymous.post("/", json=bundle).status_code == 401


def test_anonymous_includes_leave_non_public_types_out(
    server: LiveServer, organization: str
) -> None:
    with from_address(base_url=server.base, headers=FHIR) as anonymous:
        found = anonymous.get("/Organization", params={"_id": organization, "_include": "*"})
        assert found.status_code == 200
        assert {e["resource"]["resourceType"] for e in found.json()["entry"]} == {"Organization"}


def test_anonymous_callers_are_limited_per_address(server: LiveServer, organization: str) -> None:
    with from_address(base_url=server.base, headers=FHIR) as first:
        for _ in range(30):
            assert first.get(f"/Organization/{organization}").status_code == 200
        assert_throttled(first.get(f"/Organization/{organization}"))
        assert_throttled(first.get("/Patient", headers={"Authorization": "Bearer forged"}))
    with from_address(base_url=server.base, headers=FHIR) as second:
        assert second.get(f"/Organization/{organization}").status_code == 200


def test_a_public_tier_client_gets_the_same_restrictions_as_403(
    server: LiveServer, organization: str
) -> None:
    with fhir_client(server, register(server, tier="public")) as http:
        assert http.get(f"/Organization/{organization}").status_code == 200
        assert http.get("/Patient").status_code == 403
        assert http.post("/Organization", json={"resourceType": "Organization"}).status_code == 403
        assert (
            http.get("/Organization", params={"_revinclude": "Patient:organization"}).status_code
            == 403
        )


def test_without_public_types_anonymous_callers_get_401(tmp_path: Path) -> None:
    with (
        LiveServer(limited_settings(tmp_path, public_types="")) as live,
        from_address(base_url=live.base, headers=FHIR) as anonymous,
    ):
        assert anonymous.get("/Organization").status_code == 401
        assert anonymous.get("/metadata").status_code == 200


# -- partner contracts ---------------------------------------------------------------------------
def test_a_partner_uses_only_its_contracts_types(
    server: LiveServer, admin: httpx.Client, organization: str
) -> None:
    patient = admin.post("/Patient", json={"resourceType": "Patient"}).json()["id"]
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "partner"},
        "subject": {"reference": f"Patient/{patient}"},
    }
    obs = admin.post("/Observation", json=observation).json()["id"]
    credentials = register(server, tier="partner", allowed_types="Observation Organization")
    with fhir_client(server, credentials) as http:
        assert http.get(f"/Observation/{obs}").status_code == 200
        assert http.get(f"/Organization/{organization}").status_code == 200
        assert http.get("/Patient").status_code == 403
        assert http.get(f"/Patient/{patient}").status_code == 403
        included = http.get("/Observation", params={"_id": obs, "_include": "Observation:subject"})
        assert [e["resource"]["resourceType"] for e in included.json()["entry"]] == ["Observation"]
        revincluded = http.get("/Observation", params={"_revinclude": "Provenance:target"})
        assert revincluded.status_code == 403
        assert (
            http.get("/Observation", params={"subject:Patient.family": "Hidden"}).status_code == 403
        )
        assert http.get("/_history").status_code == 403
        entry = {"request": {"method": "GET", "url": "Patient"}}
        batch = http.post("/", json={"resourceType": "Bundle", "type": "batch", "entry": [entry]})
        assert batch.json()["entry"][0]["response"]["status"].startswith("403")


def test_a_partner_asks_for_purposes_within_its_contract(server: LiveServer) -> None:
    credentials = register(server, tier="partner", purposes="ETREAT TREAT")
    with from_address() as http:
        missing = token_request(http, server, credentials)
        assert missing.status_code == 400
        assert missing.json()["error"] == "invalid_request"
        assert token_request(http, server, credentials, purpose_of_use="HRESCH").status_code == 400
    with fhir_client(server, credentials, purpose_of_use="TREAT") as http:
        assert http.get("/Organization").status_code == 200
        _set_purposes(server, credentials[0], "ETREAT")  # the contract changes under the token
        deadline = time.monotonic() + 10
        while http.get("/Organization").status_code == 200:
            assert time.monotonic() < deadline, "the new contract did not apply"
            time.sleep(0.3)
        refused = http.get("/Organization")
        assert refused.status_code == 403
        assert "contract" in refused.json()["issue"][0]["diagnostics"]
        assert http.get("/metadata").status_code == 200


def _set_purposes(server: LiveServer, client_id: str, purposes: str) -> None:
    async def change() -> None:
        async with auth_store(server.settings) as store, store.writer.begin() as connection:
            await connection.execute(
                update(oauth_client)
                .where(oauth_client.c.client_id == client_id)
                .values(purposes=purposes)
            )

    asyncio.run(change())


# -- brute force ---------------------------------------------------------------------------------
def test_client_authentication_failures_are_slowed_then_locked(server: LiveServer) -> None:
    client_id, secret = register(server)
    wrong = (client_id, "not the secret")
    with from_address() as http, structlog.testing.capture_logs() as logs:
        for _ in range(3):
            assert token_request(http, server, wrong).status_code == 401
        slowed = token_request(http, server, (client_id, secret))
        assert slowed.status_code == 429
        assert slowed.json()["error"] == "temporarily_unavailable"
        assert slowed.headers["retry-after"] == "1"
        time.sleep(1.1)
        assert token_request(http, server, wrong).status_code == 401  # 4th failure
        time.sleep(2.1)
        assert token_request(http, server, wrong).status_code == 401  # 5th: locked
        locked = token_request(http, server, (client_id, secret))
        assert locked.status_code == 429
        assert 55 <= int(locked.headers["retry-after"]) <= 60
    lockouts = [e for e in logs if e["event"] == "security.lockout"]
    assert [(e["subject_kind"], e["subject"], e["failures"]) for e in lockouts] == [
        ("client", client_id, 5)
    ]
    assert secret not in str(lockouts)


def test_a_success_forgets_the_accounts_failures(server: LiveServer) -> None:
    client_id, secret = register(server)
    with from_address() as http:
        for _ in range(2):
            assert token_request(http, server, (client_id, "wrong")).status_code == 401
        assert token_request(http, server, (client_id, secret)).status_code == 200
        for _ in range(3):
            assert token_request(http, server, (client_id, "wrong")).status_code == 401
        assert token_request(http, server, (client_id, "wrong")).status_code == 429


def test_failures_from_one_address_slow_it_down_whatever_the_account(server: LiveServer) -> None:
    with from_address() as http:
        for _ in range(6):
            unknown = (uuid.uuid4().hex, "guess")
            assert token_request(http, server, unknown).status_code == 401
        assert token_request(http, server, (uuid.uuid4().hex, "guess")).status_code == 429
    with from_address() as elsewhere:
        assert token_request(elsewhere, server, (uuid.uuid4().hex, "guess")).status_code == 401


def test_sign_in_failures_are_slowed_per_username(server: LiveServer, admin: httpx.Client) -> None:
    username = f"bf-{uuid.uuid4().hex[:8]}"
    register_user(server.settings, username, PASSWORD)
    app = register_public_client(server.settings, [APP], "user/*.rs")
    browser = from_address(follow_redirects=False)
    run = AuthorizationRun(server.url, server.base, app, APP, "user/*.rs", browser=browser)
    assert run.open().status_code == 200
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            assert run.login(username, "wrong password!!").status_code == 401
        slowed = run.login(username, PASSWORD)
    assert slowed.status_code == 429
    assert slowed.headers["retry-after"] == "1"
    assert "try again" in slowed.text
    assert username not in str(logs)
    run.pages.pop()  # the refusal page has no form: sign in from the last form again
    time.sleep(1.1)
    assert run.login(username, PASSWORD).status_code == 200  # the consent page
