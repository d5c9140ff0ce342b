"""No data without a valid token; scopes enforced on every path (one test per rejection path)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from santinel.settings import Settings
from tests.auth import BearerAuth, register_client
from tests.services import LiveServer

HEADERS = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}


def client_with(server: LiveServer, settings: Settings, scope: str) -> httpx.Client:
    client_id, secret = register_client(settings, scope)
    auth = BearerAuth(f"{server.url}/oauth/token", client_id, secret, scope)
    return httpx.Client(base_url=server.base, headers=HEADERS, auth=auth, timeout=30)


@pytest.fixture
def reader(server: LiveServer, backend_settings: Settings) -> Iterator[httpx.Client]:
    """May read and search Patients only."""
    with client_with(server, backend_settings, "system/Patient.rs") as http:
        yield http


@pytest.fixture
def anonymous(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, headers=HEADERS, timeout=30) as http:
        yield http


def seed(client: httpx.Client) -> dict[str, str]:
    """A patient and an observation about them, written with full access."""
    t = uuid.uuid4().hex[:10]
    client.put(
        f"/Patient/ac{t}",
        json={"resourceType": "Patient", "id": f"ac{t}", "name": [{"family": f"Acc{t}"}]},
    )
    client.put(
        f"/Observation/ao{t}",
        json={
            "resourceType": "Observation",
            "id": f"ao{t}",
            "status": "final",
            "code": {"text": t},
            "subject": {"reference": f"Patient/ac{t}"},
        },
    )
    return {"patient": f"ac{t}", "observation": f"ao{t}", "family": f"Acc{t}"}


def assert_outcome(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def test_no_token_is_401_with_a_bearer_challenge(
    anonymous: httpx.Client, client: httpx.Client
) -> None:
    ids = seed(client)
    response = anonymous.get(f"/Patient/{ids['patient']}")
    assert_outcome(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert ids["family"] not in response.text


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_a_bad_token_is_401(anonymous: httpx.Client, token: str) -> None:
    response = anonymous.get("/Patient", headers={"Authorization": f"Bearer {token}"})
    assert_outcome(response, 401)


def test_the_capability_statement_needs_no_token(anonymous: httpx.Client) -> None:
    assert anonymous.get("/metadata").status_code == 200


def test_every_path_refuses_without_a_token(anonymous: httpx.Client) -> None:
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": []}
    for method, url, body in [
        ("GET", "/Patient", None),
        ("GET", "/_history", None),
        ("GET", "/Patient/x/_history", None),
        ("POST", "/", bundle),
        ("GET", "/?_type=Patient", None),
        ("POST", "/Patient", {"resourceType": "Patient"}),
        ("GET", "/?_getpages=x", None),
    ]:
        assert_outcome(anonymous.request(method, url, json=body), 401)


def test_a_read_only_client_cannot_write(reader: httpx.Client) -> None:
    assert_outcome(reader.post("/Patient", json={"resourceType": "Patient"}), 403)
    assert_outcome(reader.put("/Patient/x1", json={"resourceType": "Patient", "id": "x1"}), 403)
    assert_outcome(reader.delete("/Patient/x1"), 403)


def test_types_outside_the_scopes_are_403(reader: httpx.Client, client: httpx.Client) -> None:
    ids = seed(client)
    assert_outcome(reader.get(f"/Observation/{ids['observation']}"), 403)
    assert_outcome(reader.get("/Observation"), 403)
    assert_outcome(reader.get("/_history"), 403)
    assert reader.get(f"/Patient/{ids['patient']}").status_code == 200


def test_include_chain_and_has_cannot_reach_other_types(
    reader: httpx.Client, client: httpx.Client
) -> None:
    ids = seed(client)
    assert_outcome(
        reader.get(
            "/Patient", params={"_id": ids["patient"], "_revinclude": "Observation:subject"}
        ),
        403,
    )
    assert_outcome(reader.get("/Patient", params={"_has:Observation:subject:code:text": "x"}), 403)
    assert_outcome(
        reader.get("/Patient", params={"general-practitioner:Practitioner.name": "x"}), 403
    )
    assert_outcome(reader.get("/", params={"_type": "Patient,Observation"}), 403)


def test_transaction_entries_are_checked_before_anything_is_written(
    server: LiveServer, backend_settings: Settings, client: httpx.Client
) -> None:
    marker = uuid.uuid4().hex[:10]
    with client_with(server, backend_settings, "system/Patient.cruds") as writer:
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {"resourceType": "Patient", "name": [{"family": marker}]},
                    "request": {"method": "POST", "url": "Patient"},
                },
                {
                    "resource": {
                        "resourceType": "Observation",
                        "status": "final",
                        "code": {"text": marker},
                    },
                    "request": {"method": "POST", "url": "Observation"},
                },
            ],
        }
        assert_outcome(writer.post("/", json=bundle), 403)
    assert (
        client.get("/Patient", params={"family": marker, "_summary": "count"}).json()["total"] == 0
    )


def test_batch_entries_are_checked_one_by_one(reader: httpx.Client, client: httpx.Client) -> None:
    ids = seed(client)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{ids['patient']}"}},
            {"request": {"method": "GET", "url": f"Observation/{ids['observation']}"}},
        ],
    }
    statuses = [e["response"]["status"] for e in reader.post("/", json=bundle).json()["entry"]]
    assert statuses == ["200 OK", "403 Forbidden"]


def test_paging_links_belong_to_the_client_that_searched(
    server: LiveServer, backend_settings: Settings, client: httpx.Client
) -> None:
    family = f"Page{uuid.uuid4().hex[:8]}"
    for n in range(3):
        client.put(
            f"/Patient/{family}-{n}",
            json={"resourceType": "Patient", "id": f"{family}-{n}", "name": [{"family": family}]},
        )
    first: dict[str, Any] = client.get("/Patient", params={"family": family, "_count": 1}).json()
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert client.get(next_url).status_code == 200
    with client_with(server, backend_settings, "system/Patient.rs") as other:
        assert_outcome(other.get(next_url), 404)


def test_a_disabled_client_loses_access(server: LiveServer, backend_settings: Settings) -> None:
    import asyncio

    from santinel.cli.store import auth_store

    client_id, secret = register_client(backend_settings, "system/Patient.rs")
    auth = BearerAuth(f"{server.url}/oauth/token", client_id, secret, "system/Patient.rs")
    with httpx.Client(base_url=server.base, headers=HEADERS, auth=auth) as http:
        assert http.get("/Patient", params={"_count": 1}).status_code == 200

        async def disable() -> None:
            async with auth_store(backend_settings) as store:
                await store.set_client_disabled(client_id, True)

        asyncio.run(disable())
        # a disabled client is noticed within the authenticator's state cache time (2 s)
        deadline = time.monotonic() + 10
        while http.get("/Patient", params={"_count": 1}).status_code != 401:
            assert time.monotonic() < deadline, "the disabled client still gets data"
            time.sleep(0.2)


def test_conditional_writes_need_search_rights(
    server: LiveServer, backend_settings: Settings
) -> None:
    with client_with(server, backend_settings, "system/Patient.cu") as writer:
        assert writer.post("/Patient", json={"resourceType": "Patient"}).status_code == 201
        oracle = writer.post(
            "/Patient", json={"resourceType": "Patient"}, headers={"If-None-Exist": "family=Secret"}
        )
        assert_outcome(oracle, 403)
        assert_outcome(writer.put("/Patient?family=Secret", json={"resourceType": "Patient"}), 403)


def test_included_resources_of_types_outside_the_scopes_are_left_out(
    reader: httpx.Client, client: httpx.Client
) -> None:
    t = uuid.uuid4().hex[:10]
    client.put(f"/Practitioner/pr{t}", json={"resourceType": "Practitioner", "id": f"pr{t}"})
    client.put(
        f"/Patient/pp{t}",
        json={
            "resourceType": "Patient",
            "id": f"pp{t}",
            "generalPractitioner": [{"reference": f"Practitioner/pr{t}"}],
        },
    )
    params = {"_id": f"pp{t}", "_include": "Patient:general-practitioner"}
    full = client.get("/Patient", params=params).json()
    assert [e["search"]["mode"] for e in full["entry"]] == ["match", "include"]
    limited = reader.get("/Patient", params=params).json()
    assert [e["resource"]["resourceType"] for e in limited["entry"]] == ["Patient"]
    wildcard = reader.get("/Patient", params={"_id": f"pp{t}", "_include": "*"}).json()
    assert [e["resource"]["resourceType"] for e in wildcard["entry"]] == ["Patient"]
