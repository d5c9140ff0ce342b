"""Shared fixtures: every functional test runs against SQLite and PostgreSQL, over real HTTP."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from santinel.settings import Settings
from tests.services import TLS, LiveServer, postgres_database

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session", params=BACKENDS)
def backend_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings for one storage backend, on a fresh database that lives for the test session."""
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path_factory.mktemp("sqlite"), max_body_bytes=1024 * 1024)
        return
    if request.param == "postgres":
        with postgres_database() as url:
            yield Settings(database_url=url, max_body_bytes=1024 * 1024)


@pytest.fixture(scope="session")
def server(backend_settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(backend_settings) as live:
        yield live


ANALYZE_EVERY = 10.0  # seconds
_last_analyze: dict[str, float] = {}


def analyzed(settings: Settings) -> None:
    """Refresh PostgreSQL's planner statistics of the session database, as autovacuum does in
    production. Tables filled within the first minute of a test run have none yet, and the
    planner then takes every table for one row and nests loops (seconds for a chained search
    over a few thousand rows)."""
    url = settings.database_url
    if not url or time.monotonic() - _last_analyze.get(url, 0.0) < ANALYZE_EVERY:
        return

    async def run() -> None:
        connection = await asyncpg.connect(url, timeout=5)
        try:
            await connection.execute("ANALYZE")
        finally:
            await connection.close()

    asyncio.run(run())
    _last_analyze[url] = time.monotonic()


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    analyzed(server.settings)
    headers = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
    with httpx.Client(
        base_url=server.base, headers=headers, timeout=30, verify=TLS, auth=server.auth
    ) as http:
        yield http


@pytest.fixture(scope="session")
def fhir_examples() -> Path:
    """The official R4 examples (`make examples` fetches them)."""
    folder = Path(os.environ.get("SANTINEL_FHIR_EXAMPLES", ".cache/fhir-r4-examples/package"))
    if not (folder / "package.json").exists():
        pytest.fail(f"official FHIR examples not found in {folder}: run `make examples`")
    return folder
