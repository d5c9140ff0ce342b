"""Erasure by crypto-shredding (RGPD art. 17) over real HTTP, on SQLite and PostgreSQL:
`POST Patient/[id]/$erase` makes every version of the patient's compartment unreadable (410),
leaves other patients untouched, keeps the audit chain verifiable with a tombstone, and is
refused without both admin scopes or under a legal hold (`santinel patients hold`)."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from santinel.cli.main import app
from santinel.storage.sql.keystore import RECHECK_SECONDS
from santinel.storage.sql.repository import SqlRepository
from santinel.storage.sql.tables import audit_event, data_key
from tests.audit_trail import opened_rows
from tests.auth import BearerAuth, mint, register_client
from tests.services import TLS, LiveServer

HEADERS = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
ERASER = "system/Patient.d system/*.rs santinel:erase"


def http_with(server: LiveServer, scope: str) -> httpx.Client:
    auth = BearerAuth(f"{server.url}/oauth/token", *register_client(server.settings, scope), scope)
    return httpx.Client(base_url=server.base, headers=HEADERS, auth=auth, timeout=30, verify=TLS)


@pytest.fixture
def eraser(server: LiveServer) -> Iterator[httpx.Client]:
    with http_with(server, ERASER) as http:
        yield http


def chart(client: httpx.Client, tag: str) -> dict[str, str]:
    """A patient with two versions, an observation (two versions) and an encounter."""
    pid = f"er{tag}"
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": f"E{tag}"}],
    }
    assert client.put(f"/Patient/{pid}", json=patient).is_success
    assert client.put(f"/Patient/{pid}", json={**patient, "active": True}).is_success
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"o{pid}",
        "status": "final",
        "code": {"text": f"t{tag}"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    assert client.put(f"/Observation/o{pid}", json=obs).is_success
    assert client.put(f"/Observation/o{pid}", json={**obs, "status": "amended"}).is_success
    enc = {
        "resourceType": "Encounter",
        "id": f"e{pid}",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    assert client.put(f"/Encounter/e{pid}", json=enc).is_success
    return {"patient": pid, "observation": f"o{pid}", "encounter": f"e{pid}"}


def erase(http: httpx.Client, pid: str) -> httpx.Response:
    return http.post(f"/Patient/{pid}/$erase")


def store_args(server: LiveServer) -> list[str]:
    settings = server.settings
    if settings.database_url:
        return ["--database-url", settings.database_url]
    return ["--data-dir", str(settings.data_dir)]


def test_erasure_makes_every_version_of_the_compartment_unreadable(
    client: httpx.Client, eraser: httpx.Client, server: LiveServer
) -> None:
    tag = uuid.uuid4().hex[:10]
    mine, theirs = chart(client, tag), chart(client, tag + "b")
    shared = {
        "resourceType": "Appointment",
        "id": f"ap{tag}",
        "status": "booked",
        "participant": [
            {"actor": {"reference": f"Patient/{mine['patient']}"}, "status": "accepted"},
            {"actor": {"reference": f"Patient/{theirs['patient']}"}, "status": "accepted"},
        ],
    }
    assert client.put(f"/Appointment/ap{tag}", json=shared).is_success
    done = erase(eraser, mine["patient"])
    assert done.status_code == 200, done.text
    assert "3 resource(s) and 5 version(s)" in done.json()["issue"][0]["diagnostics"]
    pid = mine["patient"]
    for path in (
        f"/Patient/{pid}",
        f"/Patient/{pid}/_history/1",
        f"/Observation/{mine['observation']}",
        f"/Observation/{mine['observation']}/_history/1",
        f"/Encounter/{mine['encounter']}",
    ):
        assert client.get(path).status_code == 410, path
    assert client.get(f"/Patient/{pid}/_history").json().get("entry", []) == []
    assert client.get("/Observation", params={"subject": f"Patient/{pid}"}).json()["total"] == 0
    assert client.get("/Patient", params={"family:exact": f"E{tag}"}).json()["total"] == 0
    # another patient's record, and data shared with them (the shared key), are untouched
    other = theirs["patient"]
    assert client.get(f"/Patient/{other}").status_code == 200
    assert client.get(f"/Observation/{theirs['observation']}/_history/1").status_code == 200
    assert client.get("/Patient", params={"family:exact": f"E{tag}b"}).json()["total"] == 1
    assert client.get(f"/Appointment/ap{tag}").status_code == 200
    assert erase(eraser, pid).status_code == 410  # once is enough
    trail = audit_trail(server)
    tombstones = [r for r in trail if r.subtype == "$erase" and r.entity == f"Patient/{pid}"]
    assert len(tombstones) == 1
    body = orjson.loads(tombstones[0].body)
    assert f"E{tag}" not in tombstones[0].body.decode()  # pseudonymous: no content
    assert body["outcome"] == "0"


def audit_trail(server: LiveServer) -> list[Any]:
    """The records, verified (the chain still verifies), their bodies opened."""
    return [row.record for row in opened_rows(server.settings)]


def test_erasure_reaches_the_details_of_the_patients_audit_events(
    client: httpx.Client, eraser: httpx.Client, server: LiveServer
) -> None:
    """Their events were sealed with their key: afterwards the name they were searched by is
    unreadable, the log still says who accessed the record and when (the erased view), the
    chain still verifies, and the erasure's own record stays readable."""
    tag = uuid.uuid4().hex[:10]
    pid, name = chart(client, tag)["patient"], f"E{tag}"
    found = client.get("/Patient", params={"family:exact": name}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [pid]
    with http_with(server, "system/Patient.rs system/AuditEvent.rs") as auditor:
        before = {e["id"]: e for e in access_log(auditor, pid)}
        assert any(name in query_of(e) for e in before.values())  # in clear through the API
        assert erase(eraser, pid).status_code == 200
        after = {e["id"]: e for e in access_log(auditor, pid)}
        read_one = auditor.get(f"/AuditEvent/{next(iter(before))}").json()
    assert name not in orjson.dumps([after, read_one]).decode()
    assert read_one["meta"]["security"][0]["code"] == "REDACTED"
    for event_id, was in before.items():
        now = after[event_id]
        assert now["meta"]["security"][0]["code"] == "REDACTED", now
        assert not query_of(now)
        assert all("network" not in agent for agent in now["agent"])
        for kept in ("recorded", "action", "outcome", "subtype", "type"):
            assert now[kept] == was[kept], kept
        assert entity_refs(now) == entity_refs(was)  # the patient and the data reference
    erasure = [e for e in after.values() if e["subtype"][0]["code"] == "$erase"]
    assert len(erasure) == 1
    assert "meta" not in erasure[0]  # sealed with the class key: the proof of erasure stays
    owners = anyio.run(key_owners, server, pid)
    assert owners[erasure[0]["id"]] == "type:audit"
    assert {owners[event_id] for event_id in before} == {f"Patient/{pid}"}
    verified = CliRunner().invoke(app, ["audit", "verify", *store_args(server)])
    assert verified.exit_code == 0, verified.output
    assert "sealed with an erased key" in verified.output


def access_log(http: httpx.Client, pid: str) -> list[dict[str, Any]]:
    found = http.get(f"/Patient/{pid}/$access-log", params={"_count": "200"})
    assert found.status_code == 200, found.text
    return [entry["resource"] for entry in found.json()["entry"]]


def query_of(event: dict[str, Any]) -> str:
    queries = [e["query"] for e in event.get("entity", []) if "query" in e]
    return "".join(base64.b64decode(q).decode() for q in queries)


def entity_refs(event: dict[str, Any]) -> list[str]:
    return sorted(
        e["what"]["reference"] for e in event.get("entity", []) if "reference" in e.get("what", {})
    )


async def key_owners(server: LiveServer, pid: str) -> dict[str, str]:
    """The owner of the key sealing each stored event about `pid` (read without any key)."""
    repository = SqlRepository(server.settings.resolved_database_url())
    a, k = audit_event.c, data_key.c
    query = select(a.event_id, k.owner).join_from(audit_event, data_key, a.key_id == k.key_id)
    try:
        async with repository.reader.connect() as connection:
            rows = await connection.execute(query.where(a.patient == pid))
            return {row.event_id: row.owner for row in rows}
    finally:
        await repository.close()


@pytest.mark.parametrize(
    "scope",
    [
        "system/Patient.d system/*.rs",  # no santinel:erase
        "system/Patient.rs santinel:erase",  # no delete permission on Patient
        "system/Observation.d santinel:erase",  # delete on another type
    ],
)
def test_erasure_is_refused_without_both_admin_scopes(
    client: httpx.Client, server: LiveServer, scope: str
) -> None:
    pid = chart(client, uuid.uuid4().hex[:10])["patient"]
    with http_with(server, scope) as http:
        assert erase(http, pid).status_code == 403
    assert client.get(f"/Patient/{pid}").status_code == 200


def test_a_patient_confined_token_cannot_erase_even_its_own_record(
    client: httpx.Client, server: LiveServer
) -> None:
    pid = chart(client, uuid.uuid4().hex[:10])["patient"]
    token = mint(server, server.settings, "patient/Patient.cruds santinel:erase", patient=pid)
    confined = client.post(
        f"/Patient/{pid}/$erase", headers={"Authorization": f"Bearer {token}"}, auth=None
    )
    assert confined.status_code == 403
    assert client.get(f"/Patient/{pid}").status_code == 200


def test_a_legal_hold_blocks_erasure_until_released(
    client: httpx.Client, eraser: httpx.Client, server: LiveServer
) -> None:
    pid = chart(client, uuid.uuid4().hex[:10])["patient"]
    runner = CliRunner()
    held = runner.invoke(
        app, ["patients", "hold", f"Patient/{pid}", "--reason", "litigation", *store_args(server)]
    )
    assert held.exit_code == 0, held.output
    refused = erase(eraser, pid)
    assert refused.status_code == 409
    assert "legal hold (litigation)" in refused.json()["issue"][0]["diagnostics"]
    cli = runner.invoke(app, ["patients", "erase", f"Patient/{pid}", "--yes", *store_args(server)])
    assert cli.exit_code == 1
    assert client.get(f"/Patient/{pid}").status_code == 200
    released = runner.invoke(app, ["patients", "release", f"Patient/{pid}", *store_args(server)])
    assert released.exit_code == 0, released.output
    cli = runner.invoke(app, ["patients", "erase", f"Patient/{pid}", "--yes", *store_args(server)])
    assert cli.exit_code == 0, cli.output
    assert "erased" in cli.output
    assert client.get(f"/Patient/{pid}").status_code == 410
    time.sleep(RECHECK_SECONDS)  # erased by another process: the server learns it this fast
    assert client.get(f"/Patient/{pid}/_history/2").status_code == 410


def test_unknown_patients_cannot_be_erased(eraser: httpx.Client) -> None:
    assert erase(eraser, f"none{uuid.uuid4().hex[:8]}").status_code == 404
    assert eraser.get(f"/Patient/{uuid.uuid4().hex[:8]}/$erase").status_code == 405
