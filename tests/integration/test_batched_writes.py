"""Transactions write in batches (current versions read ahead, rows of every table sent together,
on SQLite in one hop to the driver's thread): the rows that land are exactly the ones planned,
on SQLite and PostgreSQL, and a Bundle gives the same data, searches and audit records as the
same resources written one by one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from sqlalchemy import select

from santinel.demo.generator import generate
from santinel.fhir.search.query import parse_query
from santinel.services.audit import patients_of
from santinel.services.container import Container
from santinel.services.guard import OPERATOR
from santinel.services.request import FhirRequest
from santinel.settings import Settings
from santinel.storage.sql.batch_writes import Batch
from santinel.storage.sql.repository import SqlRepository
from santinel.storage.sql.search.blind import BlindRows
from santinel.storage.sql.search.indexing import IndexBuffer
from santinel.storage.sql.tables import INDEX_TABLES, audit_event, resource
from santinel.types import ResourceId, ResourceType, VersionId
from tests.services import postgres_database

GONE_TYPE = "MedicationRequest"  # the demo data has one: deleted at the end
HEADERS = {"content-type": "application/fhir+json", "prefer": "return=minimal"}
SEARCHES = [
    ("Observation", [("code", "http://loinc.org|8867-4")]),
    ("Observation", [("value-quantity", "gt60")]),
    ("Observation", [("code-value-quantity", "http://loinc.org|8867-4$gt60")]),
    ("Observation", [("combo-code", "8867-4")]),
    ("Observation", [("component-code-value-quantity", "http://loinc.org|8480-6$gt100")]),
    ("Condition", [("clinical-status", "active")]),
    ("Encounter", [("date", "ge2000")]),
    ("Patient", [("gender", "female")]),
]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Settings, Settings]]:
    """Two fresh databases of the same backend: one for Bundles, one for single writes."""
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path / "a"), Settings(data_dir=tmp_path / "b")
        return
    with postgres_database() as first, postgres_database() as second:
        yield Settings(database_url=first), Settings(database_url=second)


def demo_resources() -> list[dict[str, Any]]:
    return [r for group in generate(patients=3, seed=5) for r in group]


def bundle(entries: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def put(resource: dict[str, Any]) -> dict[str, Any]:
    url = f"{resource['resourceType']}/{resource['id']}"
    return {"resource": resource, "request": {"method": "PUT", "url": url}}


async def handle(container: Container, method: str, path: tuple[str, ...], body: bytes) -> None:
    request = FhirRequest(method, path, headers=HEADERS, body=body, principal=OPERATOR)
    response = await container.service.handle(request)
    assert response.status in (200, 201), response.raw


async def ingest(settings: Settings, items: list[dict[str, Any]], as_bundles: bool) -> None:
    """Create everything, then change some and delete one (as Bundles or one by one)."""
    changed = [dict(r, status="amended") for r in items if r["resourceType"] == "Observation"][:5]
    gone = next((r["resourceType"], r["id"]) for r in items if r["resourceType"] == GONE_TYPE)
    container = await Container.open(settings)
    try:
        if as_bundles:
            deletion = {"request": {"method": "DELETE", "url": "/".join(gone)}}
            for entries in ([put(r) for r in items], [put(r) for r in changed], [deletion]):
                await handle(container, "POST", (), bundle(entries))
            return
        for r in [*items, *changed]:
            await handle(container, "PUT", (r["resourceType"], r["id"]), orjson.dumps(r))
        await handle(container, "DELETE", gone, b"")
    finally:
        await container.close()


async def stored_state(settings: Settings) -> dict[str, Any]:
    """Index rows as stored, the rows planned from each current body, versions, searches and
    each audit record's (entity, patient) of the writes."""
    container = await Container.open(settings)
    repository = container.repository
    try:
        async with repository.reader.connect() as connection:
            current = (
                await connection.execute(
                    select(
                        resource.c.res_type,
                        resource.c.res_id,
                        resource.c.version,
                        resource.c.deleted,
                    )
                )
            ).all()
            stored = {
                t.name: Counter(_rows(await connection.execute(select(t)))) for t in INDEX_TABLES
            }
            audited = (
                await connection.execute(
                    select(audit_event.c.entity, audit_event.c.patient).where(
                        audit_event.c.entity.is_not(None)
                    )
                )
            ).all()
        planned = await _planned_rows(repository, current)
        found = {
            f"{rtype}?{params}": sorted(
                await repository.search_ids(parse_query(rtype, params), 1000)
            )
            for rtype, params in SEARCHES
        }
        patients = await _patients_by_entity(repository, [e for e, _ in audited])
    finally:
        await container.close()
    return {
        "stored": stored,
        "planned": planned,
        "versions": sorted((t, i, v, bool(d)) for t, i, v, d in current),
        "searches": found,
        "audited": sorted((e.split("/_history")[0], p) for e, p in audited),
        "expected_audit": patients,
    }


async def _planned_rows(repository: SqlRepository, current: list[Any]) -> dict[str, Counter[Any]]:
    """What the index buffer plans for each live current version (the reference)."""
    sealer = repository.sealer
    blind = BlindRows(sealer.blind, sealer.plaintext_names) if sealer.blind else None
    buffer = IndexBuffer(blind)
    for rtype, rid, _, deleted in current:
        if deleted:
            continue
        version = await repository.read(ResourceType(rtype), ResourceId(rid))
        assert version is not None
        assert version.body is not None
        buffer.replace(rtype, rid, orjson.loads(version.body), had_rows=False)
    batch = Batch()
    buffer.take(batch)
    planned: dict[str, Counter[Any]] = {t.name: Counter() for t in INDEX_TABLES}
    for table, rows in batch.inserts:
        planned[table.name].update(tuple(sorted(row.items())) for row in rows)
    return planned


def _rows(result: Any) -> Iterator[tuple[Any, ...]]:
    for row in result.mappings():
        yield tuple(sorted(row.items()))


async def _patients_by_entity(repository: SqlRepository, entities: list[str]) -> list[Any]:
    """The patients each written version is about, read back from its body (the reference)."""
    expected = []
    for entity in entities:
        rtype, rid, _, version = entity.split("/")
        found = await repository.vread(
            ResourceType(rtype), ResourceId(rid), VersionId(int(version))
        )
        assert found is not None
        source = found
        if found.body is None:  # a deletion: whose data it was, the version before says
            before = await repository.vread(
                ResourceType(rtype), ResourceId(rid), VersionId(int(version) - 1)
            )
            assert before is not None
            source = before
        for patient in sorted(patients_of([source])) or [None]:
            expected.append((f"{rtype}/{rid}", patient))
    return sorted(expected)


def without_time(state: dict[str, Any]) -> dict[str, Any]:
    """What two databases filled at different moments share: `_lastUpdated` differs, and the
    terms of blind-index rows depend on each database's own index key (only their number)."""
    stored: dict[str, Any] = {
        name: Counter({row: n for row, n in rows.items() if ("param", "_lastUpdated") not in row})
        for name, rows in state["stored"].items()
    }
    stored["search_token"] = stored["search_token"].total()
    return {"stored": stored, **{k: state[k] for k in ("versions", "searches", "audited")}}


def test_bundles_store_the_planned_rows_and_match_single_writes(
    backend: tuple[Settings, Settings],
) -> None:
    by_bundle, one_by_one = backend
    items = demo_resources()
    anyio.run(ingest, by_bundle, items, True)
    anyio.run(ingest, one_by_one, items, False)
    bundled = anyio.run(stored_state, by_bundle)
    single = anyio.run(stored_state, one_by_one)
    for state in (bundled, single):
        assert state["stored"] == state["planned"]  # every planned row, nothing else
        assert state["audited"] == state["expected_audit"]
        assert all(state["searches"].values())  # each search finds something
    assert any(not version[3] and version[2] == 2 for version in bundled["versions"])
    assert any(version[3] for version in bundled["versions"])
    assert without_time(bundled) == without_time(single)
