"""The audit trail over real HTTP on both backends: every request leaves BALP-shaped
AuditEvents, changes commit with their records, the chain verifies, AuditEvents are read-only,
and patients see who accessed their record — and nothing about anyone else."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import orjson
import pytest

from santinel.audit.chain import ChainedRow
from tests.audit_trail import opened_rows
from tests.auth import mint, register_client, register_public_client, register_user
from tests.services import LiveServer
from tests.smart_browser import AuthorizationRun

HEADERS = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}


def trail(server: LiveServer) -> list[ChainedRow]:
    """The verified chain, each body opened with the server's data keys."""
    return opened_rows(server.settings)


def events(server: LiveServer, request_id: str) -> list[dict[str, Any]]:
    """The AuditEvents of one request (found by its X-Request-Id entity)."""
    found = []
    for row in trail(server):
        event = orjson.loads(row.record.body)
        ids = [
            e["what"]["identifier"]["value"]
            for e in event.get("entity", [])
            if "identifier" in e.get("what", {})
        ]
        if request_id in ids:
            found.append(event)
    return found


def patient_of(event: dict[str, Any]) -> str | None:
    for entity in event.get("entity", []):
        if entity.get("role", {}).get("code") == "1":
            return str(entity["what"]["reference"]).removeprefix("Patient/")
    return None


def rid() -> str:
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def people(server: LiveServer) -> dict[str, str]:
    """Two patients with an Observation each."""
    made: dict[str, str] = {}
    with httpx.Client(base_url=server.base, auth=server.auth, headers=HEADERS) as http:
        for name in ("a", "b"):
            pid = f"aud-{name}-{uuid.uuid4().hex[:8]}"
            http.put(
                f"/Patient/{pid}", json={"resourceType": "Patient", "id": pid}
            ).raise_for_status()
            obs = {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "audit test"},
                "subject": {"reference": f"Patient/{pid}"},
            }
            made[name] = pid
            made[f"obs_{name}"] = http.post("/Observation", json=obs).json()["id"]
    return made


def test_a_create_commits_with_its_event(server: LiveServer, people: dict[str, str]) -> None:
    request_id = rid()
    body = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": f"Patient/{people['a']}"},
    }
    with httpx.Client(base_url=server.base, auth=server.auth, headers=HEADERS) as http:
        created = http.post("/Observation", json=body, headers={"X-Request-Id": request_id})
    assert created.status_code == 201
    [event] = events(server, request_id)
    assert event["resourceType"] == "AuditEvent"
    assert event["action"] == "C"
    assert event["outcome"] == "0"
    assert event["subtype"][0]["code"] == "create"
    assert patient_of(event) == people["a"]
    refs = [e["what"].get("reference") for e in event["entity"]]
    assert f"Observation/{created.json()['id']}/_history/1" in refs
    client = next(a for a in event["agent"] if a["type"]["coding"][0]["code"] == "110153")
    assert client["network"]["address"] == "127.0.0.1"
    assert client["policy"] == ["urn:santinel:scope:system/*.cruds"]
    assert "valueString" not in orjson.dumps(event).decode()
    assert "audit test" not in orjson.dumps(event).decode()  # never a resource body


def test_a_read_is_audited_with_its_patient(server: LiveServer, people: dict[str, str]) -> None:
    request_id = rid()
    with httpx.Client(base_url=server.base, auth=server.auth, headers=HEADERS) as http:
        assert (
            http.get(
                f"/Observation/{people['obs_b']}", headers={"X-Request-Id": request_id}
            ).status_code
            == 200
        )
    [event] = events(server, request_id)
    assert event["action"] == "R"
    assert event["subtype"][0]["code"] == "read"
    assert patient_of(event) == people["b"]


def test_a_search_has_one_event_per_patient_returned(
    server: LiveServer, people: dict[str, str]
) -> None:
    request_id = rid()
    query = f"subject=Patient/{people['a']},Patient/{people['b']}"
    with httpx.Client(base_url=server.base, auth=server.auth, headers=HEADERS) as http:
        found = http.get(f"/Observation?{query}", headers={"X-Request-Id": request_id})
    assert found.status_code == 200
    audited = events(server, request_id)
    assert {patient_of(e) for e in audited} == {people["a"], people["b"]}
    for event in audited:
        assert event["action"] == "E"
        assert event["subtype"][0]["code"] == "search-type"
        raw = next(e["query"] for e in event["entity"] if e["role"]["code"] == "24")
        assert base64.b64decode(raw).decode() == query


def test_denials_are_audited(server: LiveServer, people: dict[str, str]) -> None:
    anonymous_id, forbidden_id = rid(), rid()
    httpx.get(f"{server.base}/Patient/{people['a']}", headers={"X-Request-Id": anonymous_id})
    reader = register_client(server.settings, "system/Organization.rs")
    token = httpx.post(
        f"{server.url}/oauth/token", auth=reader, data={"grant_type": "client_credentials"}
    ).json()["access_token"]
    refused = httpx.get(
        f"{server.base}/Patient/{people['a']}",
        headers={"X-Request-Id": forbidden_id, "Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 403
    [unauthenticated] = events(server, anonymous_id)
    assert unauthenticated["outcome"] == "4"
    assert unauthenticated["outcomeDesc"]
    [forbidden] = events(server, forbidden_id)
    assert forbidden["outcome"] == "4"
    client = forbidden["agent"][0]["who"]["identifier"]["value"]
    assert client == reader[0]


def test_each_transaction_entry_is_audited_and_a_failed_one_leaves_no_event(
    server: LiveServer, people: dict[str, str]
) -> None:
    good, bad = rid(), rid()
    entries = [
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": str(i)},
                "subject": {"reference": f"Patient/{people['a']}"},
            },
            "request": {"method": "POST", "url": "Observation"},
        }
        for i in range(3)
    ]
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    with httpx.Client(base_url=server.base, auth=server.auth, headers=HEADERS) as http:
        assert http.post("/", json=tx, headers={"X-Request-Id": good}).status_code == 200
        failing = {
            **tx,
            "entry": [
                *entries,
                {
                    "request": {"method": "DELETE", "url": "Patient?_id=x"},
                    "resource": {"resourceType": "Patient"},
                },
                {
                    "request": {"method": "PUT", "url": "Observation/nope"},
                    "resource": {"resourceType": "Patient"},
                },
            ],
        }
        assert http.post("/", json=failing, headers={"X-Request-Id": bad}).status_code >= 400
    written = events(server, good)
    assert [e["subtype"][0]["code"] for e in written] == ["create"] * 3
    [refusal] = events(server, bad)
    assert refusal["outcome"] == "4"


def test_audit_events_are_read_only(server: LiveServer) -> None:
    with httpx.Client(base_url=server.base, auth=server.auth, headers=HEADERS) as http:
        some = http.get("/AuditEvent", params={"_count": "1"}).json()["entry"][0]["resource"]
        attempts = [
            http.post("/AuditEvent", json=some),
            http.put(f"/AuditEvent/{some['id']}", json=some),
            http.delete(f"/AuditEvent/{some['id']}"),
            http.patch(
                f"/AuditEvent/{some['id']}",
                json=[],
                headers={"Content-Type": "application/json-patch+json"},
            ),
        ]
        for attempt in attempts:
            assert attempt.status_code in (403, 405), attempt.text
        tx = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": some, "request": {"method": "PUT", "url": f"AuditEvent/{some['id']}"}}
            ],
        }
        assert http.post("/", json=tx).status_code == 403
        again = http.get(f"/AuditEvent/{some['id']}").json()
    assert again == some


def test_auditors_search_by_patient_agent_date_and_outcome(
    server: LiveServer, people: dict[str, str]
) -> None:
    token = mint(server, server.settings, "system/AuditEvent.rs")
    headers = {**HEADERS, "Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base, headers=headers) as http:
        about_a = http.get("/AuditEvent", params={"patient": people["a"]}).json()
        assert about_a["entry"]
        assert all(patient_of(e["resource"]) == people["a"] for e in about_a["entry"])
        failures = http.get("/AuditEvent", params={"outcome": "4", "_count": "5"}).json()
        assert all(e["resource"]["outcome"] == "4" for e in failures["entry"])
        today = http.get("/AuditEvent", params={"date": "ge2020-01-01", "_count": "2"}).json()
        assert len(today["entry"]) == 2
        assert any(link["relation"] == "next" for link in today["link"])
        following = httpx.get(
            next(x["url"] for x in today["link"] if x["relation"] == "next"), headers=headers
        ).json()
        assert {e["resource"]["id"] for e in following["entry"]}.isdisjoint(
            {e["resource"]["id"] for e in today["entry"]}
        )
        client = about_a["entry"][0]["resource"]["agent"][0]["who"]["identifier"]["value"]
        by_agent = http.get("/AuditEvent", params={"agent": client, "_count": "3"}).json()
        assert by_agent["entry"]
        assert http.get("/AuditEvent", params={"nonsense": "1"}).status_code == 400


def test_a_patient_sees_who_accessed_their_record_and_nothing_else(
    server: LiveServer, people: dict[str, str]
) -> None:
    token = mint(
        server, server.settings, "patient/Patient.rs patient/AuditEvent.rs", patient=people["a"]
    )
    headers = {**HEADERS, "Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base, headers=headers) as http:
        log = http.get(f"/Patient/{people['a']}/$access-log")
        assert log.status_code == 200
        shown = log.json()["entry"]
        assert shown
        for entry in shown:
            event = entry["resource"]
            assert patient_of(event) == people["a"]
            assert all(e.get("role", {}).get("code") != "24" for e in event.get("entity", []))
            assert all("network" not in a for a in event["agent"])
        assert people["b"] not in log.text
        other = http.get(f"/Patient/{people['b']}/$access-log")
        assert other.status_code == 404
        searched = http.get("/AuditEvent", params={"patient": people["b"]}).json()
        assert searched.get("entry", []) == []
        mine = http.get("/AuditEvent").json()
        assert mine["entry"]
        assert all(patient_of(e["resource"]) == people["a"] for e in mine["entry"])


def test_tokens_and_sign_ins_are_audited_without_secrets(
    server: LiveServer, people: dict[str, str]
) -> None:
    client_id, secret = register_client(server.settings, "system/Patient.rs")
    token_url = f"{server.url}/oauth/token"
    form = {"grant_type": "client_credentials"}
    assert httpx.post(token_url, auth=(client_id, secret), data=form).status_code == 200
    wrong = "Wr0ng-" + uuid.uuid4().hex
    assert httpx.post(token_url, auth=(client_id, wrong), data=form).status_code == 401

    username, password = f"aud-{uuid.uuid4().hex[:8]}", "a long enough password " + uuid.uuid4().hex
    register_user(server.settings, username, password, f"Patient/{people['a']}")
    app = register_public_client(server.settings, ["http://127.0.0.1:9/cb"], "patient/*.rs")
    run = AuthorizationRun(server.url, server.base, app, "http://127.0.0.1:9/cb", "patient/*.rs")
    run.open()
    bad_password = "Typed-In-Error-" + uuid.uuid4().hex
    assert run.login(username, bad_password).status_code == 401
    assert 'id="approve"' in run.login(username, password).text

    rows = trail(server)
    bodies = [orjson.loads(row.record.body) for row in rows]
    tokens = [
        e
        for e in bodies
        if e["subtype"][0]["code"] == "token"
        and e["agent"][0]["who"]["identifier"]["value"] == client_id
    ]
    assert sorted(e["outcome"] for e in tokens) == ["0", "4"]
    assert next(e for e in tokens if e["outcome"] == "4")["outcomeDesc"] == "invalid_client"
    sign_ins = [
        e
        for e in bodies
        if e["subtype"][0]["code"] == "110122"
        and e["agent"][0]["who"]["identifier"]["value"] == app
    ]
    assert sorted(e["outcome"] for e in sign_ins) == ["0", "4"]
    succeeded = next(e for e in sign_ins if e["outcome"] == "0")
    assert {"reference": f"Patient/{people['a']}"} in [a["who"] for a in succeeded["agent"]]
    everything = b"".join(row.record.body for row in rows)
    for secret_value in (secret, wrong, password, bad_password, username):
        assert secret_value.encode() not in everything
