"""`santinel keys rotate-blind-index` while a server serves, on SQLite and PostgreSQL: searches on
identifying values answer the same before, during and after; what the server writes meanwhile is
found; no digest of the old key is left; an interrupted rotation resumes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from santinel.services import key_admin
from santinel.settings import Settings
from santinel.storage.sql import rotation
from santinel.storage.sql.keystore import INDEX_OWNER, RECHECK_SECONDS
from santinel.storage.sql.tables import data_key, search_token
from tests.services import TLS, LiveServer, backend_settings

NIR = "urn:oid:1.2.250.1.213.1.4.8"
HEADERS = {"Accept": "application/fhir+json"}


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with backend_settings(request.param, tmp_path / "data") as settings:
        yield settings


def client(live: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=live.base, headers=HEADERS, auth=live.auth, timeout=30, verify=TLS)


def patient(patient_id: str, t: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": NIR, "value": f"1{t}"}],
        "name": [{"family": f"Vaillant{t}", "given": [f"Amélie{t}"]}],
        "telecom": [{"system": "phone", "value": f"+33 6 {t}"}],
        "address": [{"city": f"Montélimar{t}", "postalCode": f"26{t}"}],
        "birthDate": "1970-05-12",
    }


def observation(patient_id: str, t: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o-{patient_id}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        # a reference's identifier is blind-indexed on every type
        "subject": {
            "reference": f"Patient/{patient_id}",
            "identifier": {"system": NIR, "value": f"1{t}"},
        },
    }


def put(http: httpx.Client, resource: dict[str, Any]) -> None:
    response = http.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text


def write_person(http: httpx.Client, patient_id: str) -> str:
    t = uuid.uuid4().hex[:10]
    put(http, patient(patient_id, t))
    put(http, observation(patient_id, t))
    return t


def searches(t: str) -> list[tuple[str, dict[str, str]]]:
    """The identifying searches that find the person written with tag `t` (and nobody else)."""
    return [
        ("/Patient", {"identifier": f"{NIR}|1{t}"}),
        ("/Patient", {"family": f"vaillant{t}"}),
        ("/Patient", {"name": f"VAILLANT{t[:4]}"}),  # a prefix
        ("/Patient", {"given:exact": f"Amélie{t}"}),
        ("/Patient", {"phone": f"+33 6 {t}"}),
        ("/Patient", {"address-city": f"montelimar{t}"}),
        ("/Patient", {"address": f"26{t}"}),
        ("/Patient", {"birthdate": "1970-05-12", "family": f"vaillant{t}"}),
        ("/Observation", {"subject:identifier": f"{NIR}|1{t}"}),
    ]


def ids(http: httpx.Client, path: str, params: dict[str, str]) -> list[str]:
    response = http.get(path, params=params)
    assert response.status_code == 200, response.text
    return sorted(e["resource"]["id"] for e in response.json().get("entry", []))


def assert_found(http: httpx.Client, people: dict[str, str]) -> None:
    for patient_id, t in people.items():
        for path, params in searches(t):
            expected = [patient_id] if path == "/Patient" else [f"o-{patient_id}"]
            assert ids(http, path, params) == expected, (path, params)


async def _digests(settings: Settings, res_ids: set[str]) -> set[str]:
    """The blind-index terms of these resources (rows of protected parameters)."""
    engine = create_async_engine(settings.resolved_database_url())
    t = search_token.c
    protected = ("identifier", "family", "given", "telecom", "address-city", "address-postalcode")
    protected += ("birthdate", "subject:identifier", "patient:identifier")
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(t.code).where(
                    t.res_id.in_(res_ids), t.param.in_(protected), t.text.is_(None)
                )
            )
            return {str(code) for (code,) in rows if code is not None and len(code) == 32}
    finally:
        await engine.dispose()


async def _index_keys(settings: Settings) -> list[tuple[int, bool]]:
    """(generation, retired) of each blind-index key."""
    engine = create_async_engine(settings.resolved_database_url())
    c = data_key.c
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(c.generation, c.retired_us)
                .where(c.owner == INDEX_OWNER)
                .order_by(c.generation)
            )
            return [(int(g), r is not None) for g, r in rows]
    finally:
        await engine.dispose()


def test_rotating_the_blind_index_key_keeps_every_search_answering(settings: Settings) -> None:
    with LiveServer(settings) as live, client(live) as http:
        people = {f"r{n}": write_person(http, f"r{n}") for n in range(3)}
        assert_found(http, people)
        ids_before = {*people, *(f"o-{p}" for p in people)}
        old_digests = anyio.run(_digests, settings, ids_before)
        assert len(old_digests) > 20
        checked: list[tuple[int, int]] = []

        def progress(done: int, total: int) -> None:
            # the server keeps serving: it writes under the new key, and every search, on
            # rows rebuilt or not yet, answers the same
            n = len(checked)
            people[f"w{n}"] = write_person(http, f"w{n}")
            assert_found(http, people)
            checked.append((done, total))

        done = asyncio.run(
            key_admin.rotate_blind_index(settings, 2, progress, grace_seconds=RECHECK_SECONDS + 1)
        )
        assert not done.resumed
        assert done.keys_deleted == 1
        assert done.resources >= 6
        assert len(checked) >= 4
        assert anyio.run(_index_keys, settings) == [(2, False)]
        assert_found(http, people)
        assert anyio.run(_digests, settings, ids_before).isdisjoint(old_digests)
        time.sleep(RECHECK_SECONDS)  # the server drops the old key: the answers stay
        people["late"] = write_person(http, "late")
        assert_found(http, people)


def test_an_interrupted_rotation_resumes(settings: Settings) -> None:
    with LiveServer(settings) as live, client(live) as http:
        people = {"i0": write_person(http, "i0")}

        async def switch_only() -> None:  # a rotation stopped right after switching keys
            async with key_admin.opened_repository(settings) as repository:
                started, _ = await rotation.start_blind_index_rotation(repository)
                assert started
                again, _ = await rotation.start_blind_index_rotation(repository)
                assert not again  # the switch happens once

        anyio.run(switch_only)
        assert anyio.run(_index_keys, settings) == [(1, True), (2, False)]
        time.sleep(RECHECK_SECONDS)  # the server writes under the new key, searches both
        people["i1"] = write_person(http, "i1")
        assert_found(http, people)

        done = asyncio.run(key_admin.rotate_blind_index(settings, 10, lambda *_: None))
        assert done.resumed
        assert done.keys_deleted == 1
        assert anyio.run(_index_keys, settings) == [(2, False)]
        assert_found(http, people)
        # a data-key rotation never takes the blind-index key
        asyncio.run(key_admin.rotate_dek(settings, 10, lambda *_: None))
        assert anyio.run(_index_keys, settings) == [(2, False)]
        time.sleep(RECHECK_SECONDS)
        assert_found(http, people)
