"""When the audit trail cannot be written, nothing is served and nothing is changed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from santinel.settings import Settings
from santinel.storage.sql.repository import SqlRepository
from tests.services import LiveServer, postgres_database

HEADERS = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
BLOCK = {
    "sqlite": [
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event "
        "BEGIN SELECT RAISE(ABORT, 'audit disk full'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'audit disk full'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
    ],
}
UNBLOCK = {
    "sqlite": ["DROP TRIGGER refuse_audit"],
    "postgresql": ["DROP TRIGGER refuse_audit ON audit_event", "DROP FUNCTION refuse_audit()"],
}


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path)
        return
    with postgres_database() as url:
        yield Settings(database_url=url, data_dir=tmp_path)


def execute(settings: Settings, statements: dict[str, list[str]]) -> None:
    async def run() -> None:
        repository = SqlRepository(settings.resolved_database_url())
        try:
            async with repository.writer.begin() as connection:
                for statement in statements[connection.dialect.name]:
                    await connection.execute(text(statement))
        finally:
            await repository.close()

    asyncio.run(run())


def test_no_audit_no_service(settings: Settings) -> None:
    with LiveServer(settings) as server:
        http = httpx.Client(base_url=server.base, auth=server.auth, headers=HEADERS, timeout=30)
        body = {"resourceType": "Patient", "id": "kept"}
        assert http.put("/Patient/kept", json=body).status_code == 201
        execute(settings, BLOCK)
        try:
            created = http.put("/Patient/lost", json={"resourceType": "Patient", "id": "lost"})
            assert created.status_code in (500, 503)
            assert created.json()["resourceType"] == "OperationOutcome"
            read = http.get("/Patient/kept")
            assert read.status_code == 503
            assert read.headers["retry-after"]
            assert "kept" not in read.text.replace("Patient/kept", "")
        finally:
            execute(settings, UNBLOCK)
        assert http.get("/Patient/lost").status_code == 404  # the change did not happen
        assert http.get("/Patient/kept").status_code == 200
