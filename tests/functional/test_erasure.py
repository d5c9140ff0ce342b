"""Erasure by crypto-shredding (RGPD art. 17) over real HTTP, on SQLite and PostgreSQL:
`POST Patient/[id]/$erase` makes every version of the patient's compartment unreadable (410),
leaves other patients untouched, keeps the audit chain verifiable with a tombstone, and is
refused without both admin scopes or under a legal hold (`santinel patients hold`)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from santinel.audit.chain import first_break
from santinel.cli.main import app
from santinel.storage.sql.keystore import RECHECK_SECONDS
from santinel.storage.sql.repository import SqlRepository
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
    async def read() -> list[Any]:
        repository = SqlRepository(server.settings.resolved_database_url())
        try:
            anchor = await repository.audit.anchor()
            rows = [row async for row in repository.audit.rows(anchor.seq)]
            assert first_break(rows, anchor.seq, anchor.hash) is None  # still verifies
            return [row.record for row in rows]
        finally:
            await repository.close()

    return asyncio.run(read())


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
