"""`santinel db reindex` rebuilds lost or stale index rows from the stored resources."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from sqlalchemy import delete
from typer.testing import CliRunner

from santinel.cli.main import app
from santinel.fhir.search.query import parse_query
from santinel.services.container import Container
from santinel.services.guard import OPERATOR
from santinel.services.request import FhirRequest
from santinel.settings import Settings
from santinel.storage.sql.tables import search_token
from tests.services import backend_settings


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with backend_settings(request.param, tmp_path / "data") as settings:
        yield settings


async def _seed_then_lose_index(settings: Settings) -> None:
    container = await Container.open(settings)
    try:
        for n in range(7):
            body = f'{{"resourceType":"Patient","id":"r{n}","name":[{{"family":"Reindex{n}"}}]}}'
            await container.service.handle(
                FhirRequest("PUT", ("Patient", f"r{n}"), body=body.encode(), principal=OPERATOR)
            )
        async with container.repository.writer.begin() as connection:
            await connection.execute(delete(search_token))  # names are blind indexes there
    finally:
        await container.close()


async def _found(settings: Settings) -> int:
    container = await Container.open(settings)
    try:
        query = parse_query("Patient", [("family", "reindex")])
        return len(await container.repository.search_ids(query, 100))
    finally:
        await container.close()


def store_args(settings: Settings) -> list[str]:
    if settings.database_url:
        return ["--database-url", settings.database_url]
    return ["--data-dir", str(settings.data_dir)]


def test_reindex_rebuilds_lost_index_rows(settings: Settings) -> None:
    anyio.run(_seed_then_lose_index, settings)
    assert anyio.run(_found, settings) == 0
    result = CliRunner().invoke(app, ["db", "reindex", "--batch", "3", *store_args(settings)])
    assert result.exit_code == 0, result.output
    assert "Reindexed 7 resources" in result.output
    assert anyio.run(_found, settings) == 7
