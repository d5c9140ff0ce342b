"""`santinel demo` and `santinel load` through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from santinel.cli.data import load_demo_if_empty
from santinel.cli.main import app
from santinel.services.container import Container
from santinel.settings import Settings
from santinel.storage.base import HistoryQuery, StoredVersion
from santinel.types import ResourceId, ResourceType
from tests.services import postgres_database

runner = CliRunner()


@dataclass(frozen=True)
class Store:
    args: list[str]  # how the CLI names this database
    settings: Settings

    def read(self, resource_type: str, resource_id: str) -> StoredVersion | None:
        return asyncio.run(_read(self.settings, resource_type, resource_id))

    def count(self, resource_type: str) -> int:
        """Live resources of a type (the current version of each)."""
        return asyncio.run(_count(self.settings, resource_type))


async def _read(settings: Settings, resource_type: str, resource_id: str) -> StoredVersion | None:
    container = await Container.open(settings)
    try:
        return await container.repository.read(ResourceType(resource_type), ResourceId(resource_id))
    finally:
        await container.close()


async def _count(settings: Settings, resource_type: str) -> int:
    container = await Container.open(settings)
    try:
        page = await container.repository.history(
            HistoryQuery(resource_type=ResourceType(resource_type), count=100_000)
        )
        deleted: dict[str, bool] = {}
        for version in page.versions:  # newest first: the first seen is the current one
            deleted.setdefault(version.resource_id, version.deleted)
        return sum(1 for gone in deleted.values() if not gone)
    finally:
        await container.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        data_dir = tmp_path / "data"
        yield Store(["--data-dir", str(data_dir)], Settings(data_dir=data_dir))
        return
    with postgres_database() as url:
        yield Store(["--database-url", url], Settings(database_url=url))


def santinel(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value))
    return path


# -- demo ----------------------------------------------------------------------------------


def test_demo_into_the_database_then_again_updates_without_duplicates(store: Store) -> None:
    result = santinel("demo", "--patients", "3", "--seed", "5", *store.args)
    assert result.exit_code == 0, result.output
    assert "Patient" in result.output
    assert store.count("Patient") == 3
    observations = store.count("Observation")
    assert observations > 3
    patient = store.read("Patient", "demo-5-p0")
    assert patient is not None
    assert patient.version == 1

    again = santinel("demo", "--patients", "3", "--seed", "5", *store.args)
    assert again.exit_code == 0, again.output
    assert store.count("Patient") == 3
    assert store.count("Observation") == observations
    patient = store.read("Patient", "demo-5-p0")
    assert patient is not None
    assert patient.version == 2


def test_demo_to_ndjson_then_load_it(store: Store, tmp_path: Path) -> None:
    output = tmp_path / "demo.ndjson"
    result = santinel("demo", "--patients", "2", "--seed", "9", "--output", str(output))
    assert result.exit_code == 0, result.output
    lines = output.read_bytes().splitlines()
    resources = [json.loads(line) for line in lines]
    assert {r["resourceType"] for r in resources} >= {"Patient", "Observation", "Practitioner"}
    assert not (tmp_path / "data").exists()  # --output touches no database

    loaded = santinel("load", str(output), *store.args)
    assert loaded.exit_code == 0, loaded.output
    assert "created" in loaded.output
    assert str(len(lines)) in loaded.output
    assert store.count("Patient") == 2


def test_demo_output_refuses_database_options(tmp_path: Path) -> None:
    result = santinel(
        "demo", "--output", str(tmp_path / "x.ndjson"), "--data-dir", str(tmp_path / "d")
    )
    assert result.exit_code == 2


def test_load_demo_if_empty_loads_once(store: Store) -> None:
    settings = store.settings.model_copy(update={"demo_patients": 2})
    assert asyncio.run(load_demo_if_empty(settings)) == 2
    assert asyncio.run(load_demo_if_empty(settings)) == 0
    assert store.count("Patient") == 2
    patient = store.read("Patient", "demo-1-p1")
    assert patient is not None
    assert patient.version == 1


# -- load ----------------------------------------------------------------------------------


PATIENT = {"resourceType": "Patient", "name": [{"family": "Martin", "given": ["Léa"]}]}


def test_load_json_files_creates_then_updates(store: Store, tmp_path: Path) -> None:
    with_id = write_json(tmp_path / "with-id.json", {**PATIENT, "id": "load-1"})
    without_id = write_json(tmp_path / "without-id.json", PATIENT)
    first = santinel("load", str(with_id), str(without_id), *store.args)
    assert first.exit_code == 0, first.output
    assert store.count("Patient") == 2

    second = santinel("load", str(with_id), *store.args)
    assert second.exit_code == 0, second.output
    assert "updated" in second.output
    stored = store.read("Patient", "load-1")
    assert stored is not None
    assert stored.version == 2


def test_load_ndjson_reports_the_broken_line_and_exits_1(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "patients.ndjson"
    lines = [
        json.dumps({**PATIENT, "id": "nd-1"}),
        '{"resourceType": "Patient", "name": [',  # cut in the middle
        "",
        json.dumps({**PATIENT, "id": "nd-3", "active": "yes"}),
        json.dumps({**PATIENT, "id": "nd-5"}),
    ]
    source.write_text("\n".join(lines) + "\n")
    result = santinel("load", str(source), *store.args)
    assert result.exit_code == 1
    assert f"{source}:2" in result.output
    assert "not valid JSON" in result.output
    assert f"{source}:4" in result.output
    assert "Patient.active" in result.output
    assert store.read("Patient", "nd-1") is not None
    assert store.read("Patient", "nd-3") is None
    assert store.read("Patient", "nd-5") is not None


def test_load_runs_a_transaction_bundle_as_one_transaction(store: Store, tmp_path: Path) -> None:
    write_json(tmp_path / "old.json", {**PATIENT, "id": "to-delete"})
    assert santinel("load", str(tmp_path / "old.json"), *store.args).exit_code == 0
    patient_url = "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:7f0d0d6e-9bd4-4c09-9a55-8f3c6a5e8e41",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "weight"},
                    "subject": {"reference": patient_url},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "fullUrl": patient_url,
                "resource": PATIENT,
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "DELETE", "url": "Patient/to-delete"}},
            {
                "resource": {**PATIENT, "id": "put-1"},
                "request": {"method": "PUT", "url": "Patient/put-1"},
            },
            {
                "resource": {"resourceType": "Patient", "birthDate": "not a date"},
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    result = santinel("load", str(write_json(tmp_path / "bundle.json", bundle)), *store.args)
    assert result.exit_code == 1
    assert "Bundle.entry[4]" in result.output
    assert "birthDate" in result.output
    # all or nothing: the invalid entry kept every other entry from applying
    assert store.read("Patient", "put-1") is None
    assert not store.read("Patient", "to-delete").deleted  # type: ignore[union-attr]
    bundle["entry"] = bundle["entry"][:4]  # type: ignore[index]
    result = santinel("load", str(write_json(tmp_path / "bundle.json", bundle)), *store.args)
    assert result.exit_code == 0, result.output
    assert store.read("Patient", "put-1") is not None
    deleted = store.read("Patient", "to-delete")
    assert deleted is not None
    assert deleted.deleted
    assert store.count("Observation") == 1
    assert store.count("Patient") == 2  # the POSTed one and put-1
    observation = asyncio.run(_only(store.settings, "Observation"))
    assert observation["subject"]["reference"].startswith("Patient/")


async def _only(settings: Settings, resource_type: str) -> dict[str, Any]:
    container = await Container.open(settings)
    try:
        page = await container.repository.history(
            HistoryQuery(resource_type=ResourceType(resource_type), count=10)
        )
        assert len(page.versions) == 1
        body = page.versions[0].body
        assert body is not None
        result: dict[str, Any] = json.loads(body)
        return result
    finally:
        await container.close()


def test_load_a_directory_recursively(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "import"
    (folder / "nested").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    write_json(folder / "a.json", {**PATIENT, "id": "dir-a"})
    write_json(folder / "nested" / "b.json", {**PATIENT, "id": "dir-b"})
    (folder / "nested" / "c.ndjson").write_text(json.dumps({**PATIENT, "id": "dir-c"}) + "\n")
    write_json(folder / ".hidden" / "d.json", {**PATIENT, "id": "dir-d"})
    (folder / "notes.txt").write_text("not FHIR")
    result = santinel("load", str(folder), *store.args)
    assert result.exit_code == 0, result.output
    for rid in ("dir-a", "dir-b", "dir-c"):
        assert store.read("Patient", rid) is not None
    assert store.read("Patient", "dir-d") is None
