"""Connections go back to the pool without a rollback round trip, yet never with an open
transaction: a transaction left open on the raw driver connection is rolled back on return
(`dialects._reset_only_when_needed`), on SQLite (where it would hold the write lock) and on
PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from santinel.settings import to_sqlalchemy_url
from santinel.storage.sql import dialects
from tests.services import postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[AsyncEngine, str]]:
    if request.param == "sqlite":
        yield (
            dialects.create_engines(f"sqlite+aiosqlite:///{tmp_path / 'pool.sqlite3'}")[1],
            "sqlite",
        )
        return
    with postgres_database() as url:
        yield dialects.create_engines(to_sqlalchemy_url(url))[1], "postgres"


async def _leave_open(engine: AsyncEngine, backend: str) -> None:
    """Open a transaction on the raw driver connection and return it to the pool as is."""
    async with engine.connect() as connection:
        if backend == "sqlite":

            def begin(raw: sqlite3.Connection) -> None:
                raw.execute("BEGIN IMMEDIATE")

            await dialects.run_on_sqlite(connection, begin)
        else:

            async def begin_pg(raw: Any) -> None:
                await raw.execute("BEGIN")

            await dialects.run_on_asyncpg(connection, begin_pg)


async def _in_transaction(engine: AsyncEngine, backend: str) -> bool:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        if backend == "sqlite":
            return bool(driver._conn.in_transaction)
        return bool(driver.is_in_transaction())


def test_a_transaction_left_open_is_rolled_back_on_return(engines: tuple[AsyncEngine, str]) -> None:
    engine, backend = engines

    async def scenario() -> None:
        try:
            async with engine.begin() as connection:
                await connection.execute(text("CREATE TABLE pool_probe (n INTEGER)"))
            await _leave_open(engine, backend)
            assert not await _in_transaction(engine, backend)
            # and the connection still writes (on SQLite: the write lock was released)
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO pool_probe (n) VALUES (1)"))
            async with engine.connect() as connection:
                count = (await connection.execute(text("SELECT count(*) FROM pool_probe"))).scalar()
            assert count == 1
        finally:
            await engine.dispose()

    asyncio.run(scenario())


async def _fail_mid_transaction(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("SELECT 1"))
        raise RuntimeError("the caller failed mid-transaction")


def test_a_failed_sqlalchemy_transaction_leaves_nothing_open(
    engines: tuple[AsyncEngine, str],
) -> None:
    engine, backend = engines

    async def scenario() -> None:
        try:
            with pytest.raises(RuntimeError):
                await _fail_mid_transaction(engine)
            assert not await _in_transaction(engine, backend)
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_an_idle_postgres_connection_killed_meanwhile_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No ping at every check-out, but a connection idle for `PING_AFTER_IDLE_SECONDS` is
    pinged, and a dead one replaced before the caller's statement runs."""
    monkeypatch.setattr(dialects, "PING_AFTER_IDLE_SECONDS", 0.0)
    with postgres_database() as url:
        engine = dialects.create_engines(to_sqlalchemy_url(url))[1]

        async def scenario() -> None:
            try:
                async with engine.connect() as other:  # kills the first, returned before it
                    async with engine.connect() as connection:
                        backend = text("SELECT pg_backend_pid()")
                        pid = (await connection.execute(backend)).scalar()
                    await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                    await other.commit()
                async with engine.connect() as connection:  # the pool's first: the dead one
                    assert (await connection.execute(text("SELECT 1"))).scalar() == 1
            finally:
                await engine.dispose()

        asyncio.run(scenario())
