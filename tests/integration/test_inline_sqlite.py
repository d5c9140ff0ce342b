"""Audit appends committed inline on SQLite (`santinel.storage.sql.inline_sqlite`): they never
wait for the write lock on the event loop, give way to a data change that holds it, roll back
whole on error, keep the WAL checkpointed, and refuse a database that is not in WAL mode."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import text

from santinel.audit.events import Actor, Happening
from santinel.services import audit_verify
from santinel.services.audit import AuditService
from santinel.services.audit_verify import Keys
from santinel.services.container import prepare_schema
from santinel.services.encryption import open_sealer
from santinel.settings import Settings
from santinel.storage.sql import inline_sqlite
from santinel.storage.sql.inline_sqlite import InlineSqliteWriter
from santinel.storage.sql.repository import SqlRepository

ACTOR = Actor(client_id="inline-tests", client_address="127.0.0.1")


@asynccontextmanager
async def audit(tmp_path: Path) -> AsyncIterator[AuditService]:
    settings = Settings(data_dir=tmp_path)
    repository = SqlRepository(settings.resolved_database_url())
    await prepare_schema(repository, migrate_empty=True)
    repository.use_sealer(await open_sealer(settings, repository))
    key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"})
    service = AuditService(repository.audit, key)
    try:
        yield service
    finally:
        await service.close()
        await repository.close()


async def read_event(service: AuditService, n: int) -> None:
    happening = Happening("read", patient=f"p{n % 3}", request_id=f"r{n}")
    await service.record([service.event(ACTOR, happening)])


async def verified_records(service: AuditService) -> int:
    verified = await audit_verify.verify(service.store, Keys([service.key]), open_bodies=True)
    assert verified.ok, verified.failure
    return verified.records


def test_reads_commit_inline_and_wait_for_a_data_change_holding_the_lock(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with audit(tmp_path) as service:
            inline = service.store.inline
            assert inline is not None
            await asyncio.gather(*(read_event(service, n) for n in range(20)))
            assert inline.commits >= 1  # group-committed: as many records, fewer commits
            before = inline.commits
            async with service.store.writer.begin() as connection:  # BEGIN IMMEDIATE: the lock
                await connection.execute(text("SELECT 1"))
                waiting = asyncio.create_task(read_event(service, 20))
                await asyncio.sleep(0.3)
                assert not waiting.done()  # neither written beside the lock nor refused
            await waiting
            assert inline.commits == before  # it took the writer's path, after the change
            await read_event(service, 21)
            assert inline.commits == before + 1  # and the next one is inline again
            assert await verified_records(service) == 22

    asyncio.run(scenario())


def test_an_inline_append_that_fails_leaves_nothing_and_the_next_one_chains(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with audit(tmp_path) as service:
            await read_event(service, 0)
            inline = service.store.inline
            assert inline is not None

            def failing(connection: sqlite3.Connection) -> int:
                connection.execute(
                    "INSERT INTO keystore_state (name, value) VALUES ('inline-test', '1')"
                )
                raise sqlite3.IntegrityError("simulated failure after a write")

            with pytest.raises(sqlite3.IntegrityError):
                inline.run(failing)
            with sqlite3.connect(inline.path) as check:
                query = "SELECT count(*) FROM keystore_state WHERE name = 'inline-test'"
                assert check.execute(query).fetchone()[0] == 0
            await read_event(service, 1)
            assert await verified_records(service) == 2

    asyncio.run(scenario())


def test_busy_database_is_left_to_the_caller_without_waiting(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (n INTEGER)")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    writer = InlineSqliteWriter(path)
    called: list[int] = []

    def work(connection: sqlite3.Connection) -> int:
        called.append(1)
        return connection.execute("INSERT INTO t VALUES (1)").rowcount

    assert writer.run(work) is None
    assert called == []
    holder.execute("ROLLBACK")
    assert writer.run(work) == 1
    assert holder.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    asyncio.run(writer.close())
    holder.close()


def test_a_database_not_in_wal_mode_is_never_written_inline(tmp_path: Path) -> None:
    """NORMAL commits are only safe in WAL mode: with a rollback journal, the caller's path."""
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (n INTEGER)")  # journal_mode DELETE, SQLite's default
    writer = InlineSqliteWriter(path)
    assert writer.run(lambda c: c.execute("INSERT INTO t VALUES (1)").rowcount) is None
    assert writer.run(lambda c: c.execute("INSERT INTO t VALUES (1)").rowcount) is None
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    assert InlineSqliteWriter.for_url("sqlite+aiosqlite:///:memory:") is None
    assert InlineSqliteWriter.for_url("postgresql+asyncpg://localhost/x") is None


def test_the_wal_is_checkpointed_in_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inline connection never checkpoints on commit (it would stall the event loop);
    every CHECKPOINT_EVERY commits a worker thread does, so the WAL does not grow for ever."""
    monkeypatch.setattr(inline_sqlite, "CHECKPOINT_EVERY", 4)
    threads: list[str] = []
    real = inline_sqlite.checkpoint

    def spy(path: Path) -> None:
        threads.append(threading.current_thread().name)
        real(path)

    monkeypatch.setattr(inline_sqlite, "checkpoint", spy)

    async def scenario() -> None:
        async with audit(tmp_path) as service:
            inline = service.store.inline
            assert inline is not None
            for n in range(8):
                await read_event(service, n)
                if n == 3:  # the first checkpoint started: let it finish
                    for _ in range(100):
                        if threads:
                            break
                        await asyncio.sleep(0.02)
                    await asyncio.sleep(0.1)
            assert inline.commits == 8
            await inline.close()  # waits for a checkpoint still running
            assert await verified_records(service) == 8
        assert len(threads) == 2
        assert threading.current_thread().name not in threads

    asyncio.run(scenario())


def test_a_database_it_cannot_open_is_left_to_the_caller(tmp_path: Path) -> None:
    (tmp_path / "a-directory").mkdir()
    writer = InlineSqliteWriter(tmp_path / "a-directory")  # exists, but no database opens there
    assert writer.run(lambda c: 1) is None
    assert InlineSqliteWriter(tmp_path / "missing.sqlite3").run(lambda c: 1) is None


def test_outside_an_event_loop_checkpoints_run_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline_sqlite, "CHECKPOINT_EVERY", 2)
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (n INTEGER)")
    writer = InlineSqliteWriter(path)
    for n in range(5):
        assert writer.run(lambda c, n=n: c.execute("INSERT INTO t VALUES (?)", (n,)).rowcount) == 1
    asyncio.run(writer.close())
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone()[0] == 5
