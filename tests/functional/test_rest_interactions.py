"""R4 `http.html` interactions over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


def new_patient(family: str = "Martin") -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family, "given": ["Léa"]}]}


def create(client: httpx.Client, resource: dict[str, Any]) -> httpx.Response:
    response = client.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return response


def test_create_assigns_id_version_and_location(client: httpx.Client) -> None:
    response = create(client, {**new_patient(), "id": "client-chosen", "meta": {"versionId": "9"}})
    body = response.json()
    assert body["id"] != "client-chosen"
    assert body["meta"]["versionId"] == "1"
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"].endswith(f"/Patient/{body['id']}/_history/1")
    assert "last-modified" in response.headers


def test_read_returns_what_was_created(client: httpx.Client) -> None:
    created = create(client, new_patient("Read")).json()
    response = client.get(f"/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["content-type"].startswith("application/fhir+json")


def test_update_as_create_then_update_bumps_version(client: httpx.Client) -> None:
    rid = f"p-{uuid.uuid4().hex[:10]}"
    first = client.put(f"/Patient/{rid}", json={**new_patient(), "id": rid})
    assert first.status_code == 201
    second = client.put(f"/Patient/{rid}", json={**new_patient("Durand"), "id": rid})
    assert second.status_code == 200
    assert second.json()["meta"]["versionId"] == "2"
    assert second.headers["etag"] == 'W/"2"'


def test_vread_serves_each_version(client: httpx.Client) -> None:
    rid = f"p-{uuid.uuid4().hex[:10]}"
    client.put(f"/Patient/{rid}", json={**new_patient("One"), "id": rid})
    client.put(f"/Patient/{rid}", json={**new_patient("Two"), "id": rid})
    v1 = client.get(f"/Patient/{rid}/_history/1").json()
    v2 = client.get(f"/Patient/{rid}/_history/2").json()
    assert v1["name"][0]["family"] == "One"
    assert v2["name"][0]["family"] == "Two"
    assert client.get(f"/Patient/{rid}/_history/3").status_code == 404


def test_delete_then_read_is_gone_and_history_keeps_versions(client: httpx.Client) -> None:
    created = create(client, new_patient()).json()
    url = f"/Patient/{created['id']}"
    assert client.delete(url).status_code == 200
    gone = client.get(url)
    assert gone.status_code == 410
    assert gone.json()["resourceType"] == "OperationOutcome"
    history = client.get(f"{url}/_history").json()
    assert history["total"] == 2
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert client.get(f"{url}/_history/1").status_code == 200
    assert client.get(f"{url}/_history/2").status_code == 410


def test_delete_is_idempotent(client: httpx.Client) -> None:
    created = create(client, new_patient()).json()
    url = f"/Patient/{created['id']}"
    assert client.delete(url).status_code == 200
    assert client.delete(url).status_code == 200
    assert client.get(f"{url}/_history").json()["total"] == 2


def test_update_after_delete_revives_with_next_version(client: httpx.Client) -> None:
    created = create(client, new_patient()).json()
    url = f"/Patient/{created['id']}"
    client.delete(url)
    revived = client.put(url, json={**new_patient(), "id": created["id"]})
    assert revived.status_code == 201
    assert revived.json()["meta"]["versionId"] == "3"


def test_if_match_mismatch_is_412_and_match_updates(client: httpx.Client) -> None:
    created = create(client, new_patient()).json()
    url = f"/Patient/{created['id']}"
    body = {**new_patient("Matched"), "id": created["id"]}
    stale = client.put(url, json=body, headers={"If-Match": 'W/"7"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    fresh = client.put(url, json=body, headers={"If-Match": 'W/"1"'})
    assert fresh.status_code == 200


def test_if_none_match_and_if_modified_since_give_304(client: httpx.Client) -> None:
    response = create(client, new_patient())
    url = f"/Patient/{response.json()['id']}"
    assert client.get(url, headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": 'W/"2"'}).status_code == 200
    since = response.headers["last-modified"]
    assert client.get(url, headers={"If-Modified-Since": since}).status_code == 304
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert client.get(url, headers={"If-Modified-Since": old}).status_code == 200


def test_prefer_return_minimal_and_operation_outcome(client: httpx.Client) -> None:
    minimal = client.post("/Patient", json=new_patient(), headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201
    assert minimal.content == b""
    assert "location" in minimal.headers
    outcome = client.post(
        "/Patient", json=new_patient(), headers={"Prefer": "return=OperationOutcome"}
    )
    assert outcome.json()["resourceType"] == "OperationOutcome"


def test_conditional_create_if_none_exist(client: httpx.Client) -> None:
    created = create(client, new_patient()).json()
    condition = {"If-None-Exist": f"_id={created['id']}"}
    again = client.post("/Patient", json=new_patient(), headers=condition)
    assert again.status_code == 200
    assert again.json()["id"] == created["id"]
    assert client.get(f"/Patient/{created['id']}/_history").json()["total"] == 1
    none = client.post("/Patient", json=new_patient(), headers={"If-None-Exist": "_id=nope-x"})
    assert none.status_code == 201


def test_conditional_create_on_unsupported_parameter_is_refused(client: httpx.Client) -> None:
    response = client.post(
        "/Patient", json=new_patient(), headers={"If-None-Exist": "no-such-param=1"}
    )
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "not-supported"


def test_conditional_update_and_delete(client: httpx.Client) -> None:
    created = create(client, new_patient()).json()
    rid = created["id"]
    updated = client.put(f"/Patient?_id={rid}", json=new_patient("Cond"))
    assert updated.status_code == 200
    assert updated.json()["id"] == rid
    assert updated.json()["meta"]["versionId"] == "2"
    deleted = client.delete(f"/Patient?_id={rid}")
    assert deleted.status_code == 200
    assert client.get(f"/Patient/{rid}").status_code == 410


def test_summary_and_elements_on_read(client: httpx.Client) -> None:
    patient = {
        **new_patient(),
        "gender": "female",
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">Léa</div>',
        },
    }
    rid = create(client, patient).json()["id"]
    summary = client.get(f"/Patient/{rid}", params={"_summary": "true"}).json()
    assert "text" not in summary
    assert summary["gender"] == "female"
    assert any(t["code"] == "SUBSETTED" for t in summary["meta"]["tag"])
    elements = client.get(f"/Patient/{rid}", params={"_elements": "gender"}).json()
    assert set(elements) == {"resourceType", "id", "meta", "gender"}
    text = client.get(f"/Patient/{rid}", params={"_summary": "text"}).json()
    assert "text" in text
    assert "name" not in text


def test_pretty_output(client: httpx.Client) -> None:
    rid = create(client, new_patient()).json()["id"]
    assert b"\n  " in client.get(f"/Patient/{rid}", params={"_pretty": "true"}).content


def test_history_levels_and_paging(client: httpx.Client) -> None:
    rid = f"h-{uuid.uuid4().hex[:10]}"
    for family in ("A", "B", "C", "D", "E"):
        client.put(f"/Patient/{rid}", json={**new_patient(family), "id": rid})
    page = client.get(f"/Patient/{rid}/_history", params={"_count": 2}).json()
    assert [e["resource"]["name"][0]["family"] for e in page["entry"]] == ["E", "D"]
    seen = [e["resource"]["meta"]["versionId"] for e in page["entry"]]
    while nxt := next((k["url"] for k in page["link"] if k["relation"] == "next"), None):
        page = client.get(nxt).json()
        seen += [e["resource"]["meta"]["versionId"] for e in page["entry"]]
    assert seen == ["5", "4", "3", "2", "1"]
    assert client.get("/Patient/_history", params={"_count": 3}).json()["type"] == "history"
    assert len(client.get("/_history", params={"_count": 3}).json()["entry"]) == 3


def test_history_since_and_at(client: httpx.Client) -> None:
    rid = f"s-{uuid.uuid4().hex[:10]}"
    client.put(f"/Patient/{rid}", json={**new_patient("Old"), "id": rid})
    second = client.put(f"/Patient/{rid}", json={**new_patient("New"), "id": rid}).json()
    since = second["meta"]["lastUpdated"]
    recent = client.get(f"/Patient/{rid}/_history", params={"_since": since}).json()
    assert [e["resource"]["meta"]["versionId"] for e in recent["entry"]] == ["2"]
    at = client.get(f"/Patient/{rid}/_history", params={"_at": since}).json()
    assert "2" in [e["resource"]["meta"]["versionId"] for e in at["entry"]]
    future = client.get(f"/Patient/{rid}/_history", params={"_since": "2999-01-01"}).json()
    assert future["entry"] == []


def test_capability_statement_is_generated(client: httpx.Client) -> None:
    statement = client.get("/metadata").json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    codes = {i["code"] for i in patient["interaction"]}
    assert {"read", "vread", "update", "delete", "create", "history-instance"} <= codes
    assert "version" not in statement["software"]


def test_health_probes(server: Any) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
