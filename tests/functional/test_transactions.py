"""Batch and transaction Bundles (R4 `http.html#transaction`), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx


def tag() -> str:
    return uuid.uuid4().hex[:12]


def patient_entry(marker: str, full_url: str | None = None, **extra: Any) -> dict[str, Any]:
    resource = {"resourceType": "Patient", "name": [{"family": marker}], **extra}
    return {
        "fullUrl": full_url or f"urn:uuid:{uuid.uuid4()}",
        "resource": resource,
        "request": {"method": "POST", "url": "Patient"},
    }


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def count(client: httpx.Client, path: str, **params: Any) -> int:
    total: int = client.get(path, params={**params, "_summary": "count"}).json()["total"]
    return total


def test_transaction_creates_and_rewrites_urn_references(client: httpx.Client) -> None:
    marker = tag()
    patient = patient_entry(marker)
    observation = {
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": marker},
            "subject": {"reference": patient["fullUrl"]},
            "extension": [
                {
                    "url": "http://example.org/x",
                    "valueReference": {"reference": patient["fullUrl"]},
                },
                {"url": "http://example.org/provenance", "valueReference": {"reference": "#p1"}},
            ],
            "contained": [
                {
                    "resourceType": "Provenance",
                    "id": "p1",
                    "recorded": "2024-01-01T00:00:00Z",
                    "target": [{"reference": patient["fullUrl"]}],
                    "agent": [{"who": {"display": "x"}}],
                }
            ],
        },
        "request": {"method": "POST", "url": "Observation"},
    }
    response = client.post("/", json=transaction(observation, patient))
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in bundle["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    patient_location = bundle["entry"][1]["response"]["location"]
    patient_ref = "/".join(patient_location.split("/")[:2])
    stored = bundle["entry"][0]["resource"]
    assert stored["subject"]["reference"] == patient_ref
    assert stored["extension"][0]["valueReference"]["reference"] == patient_ref
    assert stored["contained"][0]["target"][0]["reference"] == patient_ref
    assert all("etag" in e["response"] and "lastModified" in e["response"] for e in bundle["entry"])


def test_failed_transaction_leaves_nothing_behind(client: httpx.Client) -> None:
    marker = tag()
    bad = {
        "resource": {"resourceType": "Patient", "birthDate": "1980-13-45"},
        "request": {"method": "POST", "url": "Patient"},
    }
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    response = client.post("/", json=transaction(patient_entry(marker), patient_entry(marker), bad))
    assert response.status_code in (400, 422)
    assert response.json()["resourceType"] == "OperationOutcome"
    assert count(client, "/Patient", family=marker) == 0
    history = client.get("/_history", params={"_since": since, "_count": 1000}).json()
    assert [e for e in history["entry"] if marker in json.dumps(e)] == []


def statuses_by_url(response: dict[str, Any], sent: list[dict[str, Any]]) -> dict[str, str]:
    pairs = zip(sent, response["entry"], strict=True)
    return {e["request"]["url"]: r["response"]["status"] for e, r in pairs}


def test_shuffled_transaction_has_the_same_outcome(client: httpx.Client) -> None:
    marker = tag()
    rid = f"t{marker}"
    entries = [
        patient_entry(marker),
        {
            "resource": {"resourceType": "Patient", "id": rid, "name": [{"family": marker}]},
            "request": {"method": "PUT", "url": f"Patient/{rid}"},
        },
        {"request": {"method": "DELETE", "url": f"Patient?family={marker}-none"}},
        {"request": {"method": "GET", "url": f"Patient?family={marker}"}},
    ]
    first = client.post("/", json=transaction(*entries)).json()
    shuffled = entries[:]
    random.Random(4).shuffle(shuffled)
    second = client.post("/", json=transaction(*shuffled)).json()
    first_statuses = statuses_by_url(first, entries)
    second_statuses = statuses_by_url(second, shuffled)
    assert first_statuses[f"Patient/{rid}"] == "201 Created"
    assert second_statuses[f"Patient/{rid}"] == "200 OK"
    assert first_statuses["Patient"] == second_statuses["Patient"] == "201 Created"
    # reads run after the writes: the search sees what the transaction wrote
    pairs = zip(shuffled, second["entry"], strict=True)
    search = next(r for e, r in pairs if e["request"]["method"] == "GET")
    assert search["resource"]["total"] == 3


def test_same_resource_twice_is_refused(client: httpx.Client) -> None:
    rid = f"d{tag()}"
    put = {
        "resource": {"resourceType": "Patient", "id": rid},
        "request": {"method": "PUT", "url": f"Patient/{rid}"},
    }
    response = client.post("/", json=transaction(put, put))
    assert response.status_code == 400
    assert client.get(f"/Patient/{rid}").status_code == 404


def test_conditional_create_update_delete_and_references(client: httpx.Client) -> None:
    marker = tag()
    system = "urn:oid:1.2.250.1.213.1.4.8"
    entries = [
        {
            "fullUrl": "urn:uuid:" + str(uuid.uuid4()),
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": system, "value": marker}],
            },
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": f"identifier={system}|{marker}",
            },
        },
    ]
    first = client.post("/", json=transaction(*entries)).json()
    second = client.post("/", json=transaction(*entries)).json()
    assert first["entry"][0]["response"]["status"] == "201 Created"
    assert second["entry"][0]["response"]["status"] == "200 OK"
    assert (
        first["entry"][0]["response"]["location"].split("/")[1]
        == second["entry"][0]["response"]["location"].split("/")[1]
    )
    observation = {
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": marker},
            "subject": {"reference": f"Patient?identifier={system}|{marker}"},
        },
        "request": {"method": "POST", "url": "Observation"},
    }
    created = client.post("/", json=transaction(observation)).json()
    pid = first["entry"][0]["response"]["location"].split("/")[1]
    assert created["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{pid}"
    unmatched = {
        **observation,
        "resource": {
            **observation["resource"],
            "subject": {"reference": f"Patient?identifier={system}|none-{marker}"},
        },
    }
    assert client.post("/", json=transaction(unmatched)).status_code == 412
    update = {
        "resource": {
            "resourceType": "Patient",
            "identifier": [{"system": system, "value": marker}],
            "gender": "female",
        },
        "request": {"method": "PUT", "url": f"Patient?identifier={system}|{marker}"},
    }
    updated = client.post("/", json=transaction(update)).json()
    assert updated["entry"][0]["response"]["status"] == "200 OK"
    delete = {"request": {"method": "DELETE", "url": f"Patient?identifier={system}|{marker}"}}
    client.post("/", json=transaction(delete))
    assert client.get(f"/Patient/{pid}").status_code == 410


def test_batch_entries_are_independent(client: httpx.Client) -> None:
    marker = tag()
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            patient_entry(marker),
            {
                "resource": {"resourceType": "Patient", "birthDate": "nope"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": f"Patient?family={marker}"}},
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
            {"request": {"method": "DELETE"}},
        ],
    }
    response = client.post("/", json=batch)
    assert response.status_code == 200
    bundle = response.json()
    assert bundle["type"] == "batch-response"
    statuses = [e["response"]["status"].split()[0] for e in bundle["entry"]]
    assert statuses[0] == "201"
    assert statuses[1] in ("400", "422")
    assert statuses[2] == "200"
    assert statuses[3] == "404"
    assert statuses[4] == "400"
    assert bundle["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert count(client, "/Patient", family=marker) == 1


def test_bundle_limits(client: httpx.Client, server: Any) -> None:
    too_many = transaction(*[patient_entry("x") for _ in range(1001)])
    response = client.post("/", json=too_many)
    assert response.status_code == 413
    assert response.json()["resourceType"] == "OperationOutcome"
    assert (
        client.post("/", json={"resourceType": "Bundle", "type": "collection"}).status_code == 400
    )
    assert client.post("/", json={"resourceType": "Patient"}).status_code == 400


def test_official_xds_transaction_rewrites_every_reference(
    client: httpx.Client, fhir_examples: Path
) -> None:
    bundle = json.loads((fhir_examples / "Bundle-xds.json").read_text())
    response = client.post("/", json=bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    locations = {e["response"]["location"].split("/_history")[0] for e in entries}
    document = entries[0]["resource"]
    assert document["resourceType"] == "DocumentReference"
    refs = [document["subject"]["reference"], *(a["reference"] for a in document["author"])]
    assert all(ref in locations for ref in refs), (refs, locations)
    assert document["content"][0]["attachment"]["url"] in locations


def test_official_batch_requests_get_per_entry_outcomes(
    client: httpx.Client, fhir_examples: Path
) -> None:
    for name in (
        "Bundle-bundle-request-medsallergies.json",
        "Bundle-bundle-request-simplesummary.json",
    ):
        bundle = json.loads((fhir_examples / name).read_text())
        response = client.post("/", json=bundle)
        assert response.status_code == 200
        entries = response.json()["entry"]
        assert len(entries) == len(bundle["entry"])
        assert all("status" in e["response"] for e in entries)


def test_official_transaction_fails_whole_on_empty_server(
    client: httpx.Client, fhir_examples: Path
) -> None:
    bundle = json.loads((fhir_examples / "Bundle-bundle-transaction.json").read_text())
    response = client.post("/", json=bundle)
    assert 400 <= response.status_code < 500
    assert response.json()["resourceType"] == "OperationOutcome"
    assert client.get("/Patient/123").status_code == 404
    assert count(client, "/Patient", identifier="http:/example.org/fhir/ids|234234") == 0


def test_parallel_identical_conditional_transactions_create_one_resource(server: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    marker = tag()
    system = "urn:oid:1.2.250.1.213.1.4.8"
    bundle = transaction(
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": system, "value": marker}],
            },
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": f"identifier={system}|{marker}",
            },
        }
    )

    def send(_: int) -> int:
        with httpx.Client(base_url=server.base, timeout=60, auth=server.auth) as http:
            return http.post("/", json=bundle).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(send, range(16)))
    assert statuses == [200] * 16
    with httpx.Client(base_url=server.base, auth=server.auth) as http:
        found = http.get("/Patient", params={"identifier": f"{system}|{marker}"}).json()
    assert found["total"] == 1
