"""Real backing services for tests: a fresh PostgreSQL database per test run, a live server."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from santinel.settings import Settings

PG_ADMIN_URL = os.environ.get(
    "SANTINEL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_SERVICES = os.environ.get("SANTINEL_REQUIRE_SERVICES") == "1"
# One TLS context for every test client (`httpx.Client(verify=TLS)`): httpx otherwise builds a
# new one per client, reading the CA bundle (≈ 0.1 s), which dominated short tests.
TLS = ssl.create_default_context()


def service_missing(what: str) -> None:
    """Skip on a laptop without the service; fail in CI, where it is mandatory."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (SANTINEL_REQUIRE_SERVICES=1) but unreachable")
    pytest.skip(f"{what} is not reachable")


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database; dropped afterwards. Yields its plain postgresql:// URL."""
    name = f"santinel_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError) as exc:
        service_missing(f"PostgreSQL at {PG_ADMIN_URL} ({type(exc).__name__})")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def backend_settings(backend: str, data_dir: Path) -> Iterator[Settings]:
    """Settings of a new store: "sqlite" under `data_dir`, "postgres" a new database (dropped
    afterwards)."""
    if backend == "sqlite":
        yield Settings(data_dir=data_dir)
        return
    with postgres_database() as url:
        yield Settings(database_url=url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """The real ASGI app under uvicorn on a loopback port, in a background thread."""

    def __init__(self, settings: Settings) -> None:
        from santinel.web.app import create_app

        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            lifespan="on",
            server_header=False,
            proxy_headers=False,  # as `santinel serve`: the app reads them (web/forwarded.py)
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.base = f"{self.url}/fhir"
        self.settings = settings
        self.auth: httpx.Auth = httpx.Auth()  # replaced by a full-access token once started

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        from tests.auth import BearerAuth, register_client

        self.auth = BearerAuth(f"{self.url}/oauth/token", *register_client(self.settings))
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
