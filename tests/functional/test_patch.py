"""PATCH (R4 `http.html#patch`): JSON Patch, JSON Merge Patch, FHIRPath Patch."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx


def make_patient(client: httpx.Client) -> dict[str, Any]:
    rid = f"pt{uuid.uuid4().hex[:10]}"
    body = {
        "resourceType": "Patient",
        "id": rid,
        "active": True,
        "gender": "male",
        "name": [{"family": "Durand", "given": ["Paul"]}],
        "identifier": [{"system": "urn:a", "value": "1"}, {"system": "urn:b", "value": "2"}],
    }
    created: dict[str, Any] = client.put(f"/Patient/{rid}", json=body).json()
    return created


def test_json_patch(client: httpx.Client) -> None:
    patient = make_patient(client)
    ops = [
        {"op": "replace", "path": "/gender", "value": "female"},
        {"op": "remove", "path": "/active"},
    ]
    response = client.patch(
        f"/Patient/{patient['id']}",
        content=json.dumps(ops),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["gender"] == "female"
    assert "active" not in body
    assert body["meta"]["versionId"] == "2"


def test_json_patch_test_failure_and_invalid_result_store_nothing(client: httpx.Client) -> None:
    patient = make_patient(client)
    url = f"/Patient/{patient['id']}"
    failing = [{"op": "test", "path": "/gender", "value": "female"}]
    headers = {"Content-Type": "application/json-patch+json"}
    assert client.patch(url, content=json.dumps(failing), headers=headers).status_code == 422
    invalid = [{"op": "replace", "path": "/birthDate", "value": "not-a-date"}]
    response = client.patch(url, content=json.dumps(invalid), headers=headers)
    assert response.status_code == 422
    assert response.json()["resourceType"] == "OperationOutcome"
    id_change = [{"op": "replace", "path": "/id", "value": "other"}]
    assert client.patch(url, content=json.dumps(id_change), headers=headers).status_code == 400
    assert client.get(url).json()["meta"]["versionId"] == "1"


def test_merge_patch_and_partial_resource_as_application_json(client: httpx.Client) -> None:
    patient = make_patient(client)
    url = f"/Patient/{patient['id']}"
    merge = client.patch(
        url,
        content=json.dumps({"active": None, "birthDate": "1970-01-01"}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert merge.status_code == 200
    assert "active" not in merge.json()
    assert merge.json()["birthDate"] == "1970-01-01"
    fhirpy_style = client.patch(
        url, content=json.dumps({"gender": "other"}), headers={"Content-Type": "application/json"}
    )
    assert fhirpy_style.status_code == 200
    assert fhirpy_style.json()["gender"] == "other"
    assert fhirpy_style.json()["name"] == patient["name"]


def operation(kind: str, path: str, **parts: Any) -> dict[str, Any]:
    part = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for name, value in parts.items():
        part.append({"name": name, **value})
    return {"name": "operation", "part": part}


def test_fhirpath_patch(client: httpx.Client) -> None:
    patient = make_patient(client)
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            operation("replace", "Patient.gender", value={"valueCode": "female"}),
            operation(
                "add",
                "Patient.name[0]",
                name={"valueString": "given"},
                value={"valueString": "Jean"},
            ),
            operation("delete", "Patient.identifier.where(system = 'urn:a')"),
            operation(
                "add",
                "Patient",
                name={"valueString": "birthDate"},
                value={"valueDate": "1999-09-09"},
            ),
            operation(
                "insert",
                "Patient.name[0].given",
                value={"valueString": "Alpha"},
                index={"valueInteger": 0},
            ),
        ],
    }
    response = client.patch(f"/Patient/{patient['id']}", json=parameters)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["gender"] == "female"
    assert body["name"][0]["given"] == ["Alpha", "Paul", "Jean"]
    assert body["identifier"] == [{"system": "urn:b", "value": "2"}]
    assert body["birthDate"] == "1999-09-09"


def test_patch_if_match_conditional_and_missing(client: httpx.Client) -> None:
    patient = make_patient(client)
    url = f"/Patient/{patient['id']}"
    ops = json.dumps([{"op": "replace", "path": "/gender", "value": "female"}])
    headers = {"Content-Type": "application/json-patch+json"}
    assert (
        client.patch(url, content=ops, headers={**headers, "If-Match": 'W/"9"'}).status_code == 412
    )
    assert (
        client.patch(url, content=ops, headers={**headers, "If-Match": 'W/"1"'}).status_code == 200
    )
    conditional = client.patch(f"/Patient?_id={patient['id']}", content=ops, headers=headers)
    assert conditional.status_code == 200
    assert client.patch("/Patient/no-such-patient", content=ops, headers=headers).status_code == 404
    assert client.patch(url, content=ops, headers={"Content-Type": "text/plain"}).status_code == 415


def test_patch_inside_a_transaction(client: httpx.Client) -> None:
    patient = make_patient(client)
    ops = json.dumps([{"op": "replace", "path": "/gender", "value": "female"}]).encode()
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(ops).decode(),
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": binary, "request": {"method": "PATCH", "url": f"Patient/{patient['id']}"}},
        ],
    }
    response = client.post("/", json=bundle)
    assert response.status_code == 200, response.text
    assert client.get(f"/Patient/{patient['id']}").json()["gender"] == "female"
