"""Conformance fixtures: a live server per backend on a database of its own (the official examples
loaded here must not change what other tests see, nor theirs what these queries find), and the
plan of which examples to load, computed once for both backends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from santinel.settings import Settings
from tests.auth import BearerAuth, register_client
from tests.conformance.plan import Plan, load_plan
from tests.conftest import BACKENDS
from tests.services import LiveServer, postgres_database


@pytest.fixture(scope="module", params=BACKENDS)
def isolated_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, httpx.Client]]:
    """(backend name, client with a system-wide access token) on a live server over a fresh
    database of that backend."""
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp_path_factory.mktemp("conformance"))
        yield from _serve(request.param, settings)
        return
    with postgres_database() as url:
        yield from _serve(request.param, Settings(database_url=url))


def _serve(backend: str, settings: Settings) -> Iterator[tuple[str, httpx.Client]]:
    headers = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
    with LiveServer(settings) as live:
        auth = BearerAuth(f"{live.url}/oauth/token", *register_client(settings))
        with httpx.Client(base_url=live.base, headers=headers, auth=auth, timeout=60) as client:
            yield backend, client


@pytest.fixture(scope="session")
def example_plan(fhir_examples: Path) -> Plan:
    start = time.perf_counter()
    plan = load_plan(fhir_examples)
    took = time.perf_counter() - start
    print(f"\nplan: {len(plan.examples)} examples read and indexed in {took:.1f} s")
    return plan
