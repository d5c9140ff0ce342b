"""The patient-centred searches of issue 3 seek through indexes on SQLite: no statement they run
reads `resource` or a search table from end to end (a cost that grows with the database, not
with the result). `bench/search_scale.py` measures the latency at 1,000 and 10,000 patients;
this guards the plan shapes that made it flat (SQLite without planner statistics, as Santinel
runs it)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import event

from santinel.demo.generator import generate
from santinel.services.container import Container
from santinel.services.guard import OPERATOR
from santinel.services.request import FhirRequest
from santinel.settings import Settings

SEARCH_TABLES = re.compile(r"resource|resource_history|search_[a-z]+")
FULL_SCAN = re.compile(r"^SCAN (?!CONSTANT ROW)(?P<table>\w+)")


def full_scans(database: Path, statements: list[tuple[str, Any]]) -> list[str]:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        found = []
        for sql, parameters in statements:
            for *_, detail in connection.execute("EXPLAIN QUERY PLAN " + sql, parameters or ()):
                scan = FULL_SCAN.match(detail)
                if scan and SEARCH_TABLES.fullmatch(scan["table"]):
                    found.append(f"{detail} in: {sql[:300]}")
        return found
    finally:
        connection.close()


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("plans"))

    async def scenario() -> dict[str, list[str]]:
        container = await Container.open(settings)
        try:
            groups = list(generate(patients=12, seed=7))
            headers = {"content-type": "application/fhir+json", "prefer": "return=minimal"}
            for group in groups:
                entries = [
                    {
                        "resource": r,
                        "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                    }
                    for r in group
                ]
                bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
                response = await container.service.handle(
                    FhirRequest(
                        "POST", (), headers=headers, body=orjson.dumps(bundle), principal=OPERATOR
                    )
                )
                assert response.status == 200
            patient = next(r for r in groups[1] if r["resourceType"] == "Patient")["id"]
            observation = next(r for r in groups[1] if r["resourceType"] == "Observation")
            coding = observation["code"]["coding"][0]
            queries = {
                "code": ("Observation", [("patient", f"Patient/{patient}"),
                                         ("code", f"{coding['system']}|{coding['code']}")]),
                "sorted": ("Observation", [("patient", f"Patient/{patient}"),
                                           ("_sort", "-date"), ("_count", "10")]),
                "revinclude": ("Encounter", [("patient", f"Patient/{patient}"),
                                             ("_revinclude", "Observation:encounter")]),
            }  # fmt: skip
            captured: list[tuple[str, Any]] = []

            def capture(conn: Any, cursor: Any, sql: str, params: Any, *_: Any) -> None:
                if sql.lstrip().upper().startswith(("SELECT", "WITH")):
                    captured.append((sql, params))

            engine = container.repository.reader.sync_engine
            event.listen(engine, "before_cursor_execute", capture)
            result = {}
            for name, (resource_type, params) in queries.items():
                captured.clear()
                response = await container.service.handle(
                    FhirRequest("GET", (resource_type,), tuple(params), principal=OPERATOR)
                )
                assert response.status == 200
                assert captured, f"{name}: no statement captured"
                result[name] = full_scans(settings.sqlite_path, list(captured))
            event.remove(engine, "before_cursor_execute", capture)
            return result
        finally:
            await container.close()

    return asyncio.run(scenario())


@pytest.mark.parametrize("query", ["code", "sorted", "revinclude"])
def test_the_search_reads_no_table_from_end_to_end(plans: dict[str, list[str]], query: str) -> None:
    assert plans[query] == []


def test_a_full_scan_is_noticed(tmp_path: Path) -> None:
    """The detector itself: a statement without a usable index is reported."""
    database = tmp_path / "probe.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE search_token (res_id TEXT, value TEXT)")
        connection.execute("CREATE INDEX ix_value ON search_token (value)")
    seeking = [("SELECT res_id FROM search_token WHERE value = ?", ("x",))]
    scanning = [("SELECT res_id FROM search_token WHERE res_id = ?", ("x",))]
    assert full_scans(database, seeking) == []
    assert len(full_scans(database, scanning)) == 1
