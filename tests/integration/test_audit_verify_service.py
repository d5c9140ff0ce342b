"""The verification and retention services called directly, on both backends: what the CLI
(`santinel audit verify|prune`) and the running server's retention use."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from alembic import command
from joserfc.jwk import ECKey
from sqlalchemy import Connection, insert, text, update

from santinel.audit.chain import link
from santinel.audit.events import Actor, Happening, build, render
from santinel.audit.records import GENESIS, AuditRecord
from santinel.services import audit_verify
from santinel.services.audit import AuditService
from santinel.services.audit_verify import AuditKeyNeeded, Keys
from santinel.services.container import prepare_schema
from santinel.services.encryption import open_sealer
from santinel.settings import Settings
from santinel.storage.base import AuditQuery
from santinel.storage.sql import dialects, migrations
from santinel.storage.sql.audit_store import SqlAuditStore
from santinel.storage.sql.repository import SqlRepository
from santinel.storage.sql.sealing import IntegrityFailure
from santinel.storage.sql.tables import audit_event
from tests.services import postgres_database

ACTOR = Actor(client_id="verify-tests", client_address="127.0.0.1")


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path)
        return
    with postgres_database() as url:
        yield Settings(database_url=url, data_dir=tmp_path)


@asynccontextmanager
async def audit(settings: Settings, retention_days: float = 0) -> AsyncIterator[AuditService]:
    """The audit service of a repository opened with its data keys (bodies are sealed)."""
    repository = SqlRepository(settings.resolved_database_url())
    await prepare_schema(repository, migrate_empty=True)
    repository.use_sealer(await open_sealer(settings, repository))
    key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"})
    service = AuditService(repository.audit, key, retention_days=retention_days)
    try:
        yield service
    finally:
        await service.close()
        await repository.close()


async def write(service: AuditService, count: int, recorded_from_us: int) -> None:
    """`count` records, recorded one second apart from `recorded_from_us`."""
    await service.store.write(
        [
            build(
                uuid.uuid4().hex,
                recorded_from_us + n * 1_000_000,
                ACTOR,
                Happening("read", patient=f"p{n % 3}", request_id=f"r{n}"),
                service.observer,
            )
            for n in range(count)
        ]
    )


def test_verify_checkpoints_retention_and_forged_anchor(settings: Settings) -> None:
    async def run() -> None:
        async with audit(settings, retention_days=1) as service:
            store, keys = service.store, Keys([service.key])
            day_us = 86_400 * 1_000_000
            start = 1_790_000_000_000_000
            empty = await audit_verify.verify(store, keys)
            assert empty.ok
            assert empty.records == 0
            await write(service, 10, start)
            first = await service.checkpoint()
            await write(service, 10, start + 2 * day_us)
            second = await service.checkpoint()
            assert first is not None
            assert second is not None
            await write(service, 3, start + 3 * day_us)

            checked = await audit_verify.verify(store, keys, [first])
            assert checked.ok, checked.failure
            assert (checked.records, checked.last_seq, checked.checkpoints) == (23, 23, 2)
            assert checked.external == 1
            assert checked.unsigned_tail == 3
            with pytest.raises(AuditKeyNeeded):
                await audit_verify.verify(store, Keys([]))
            # a foreign key's checkpoint file is refused before anything is compared
            other = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"})
            assert audit_verify.check_external(Keys([other]), [first]) == [first]

            # retention: one day, "now" = the third batch's time → the first 10 records go
            pruned = await service.apply_retention(now_us=start + 3 * day_us)
            assert pruned == audit_verify.Pruned(10, 10)
            after = await audit_verify.verify(store, keys, [first, second])
            assert after.ok, after.failure
            assert after.anchor_signed
            assert (after.records, after.first_seq, after.external_pruned) == (13, 11, 0)
            again = await service.apply_retention(now_us=start + 3 * day_us)
            assert again == audit_verify.Pruned(0, 10)
            # an older prune (another node's, computed earlier) never moves the anchor back
            assert await store.prune(5, (await store.anchor())) == 0

            # the owner moves the anchor forward without the key
            async with store.writer.begin() as connection:
                await connection.execute(text("DELETE FROM audit_event WHERE seq <= 12"))
                row = (
                    await connection.execute(text("SELECT hash FROM audit_event WHERE seq = 13"))
                ).first()
                assert row is not None
                await connection.execute(
                    text("UPDATE audit_anchor SET seq = 13, hash = :h"), {"h": row.hash}
                )
            forged = await audit_verify.verify(store, keys)
            assert forged.failure is not None
            assert forged.failure.seq == 13
            assert "pruning anchor" in forged.failure.reason
            # and retention refuses to prune what does not verify
            with pytest.raises(audit_verify.PruneRefused):
                await service.apply_retention(now_us=start + 10 * day_us)

    asyncio.run(run())


def test_retention_off_keeps_everything(settings: Settings) -> None:
    async def run() -> None:
        async with audit(settings) as service:
            await write(service, 3, 1_000_000)
            assert await service.apply_retention(now_us=10**18) is None
            assert (await service.store.head())[0] == 3

    asyncio.run(run())


def synchronous_mode(connection: sqlite3.Connection) -> int:
    """On the sqlite3 connection itself: through SQLAlchemy, the statement would begin a
    transaction, and that sets FULL."""
    return int(connection.execute("PRAGMA synchronous").fetchone()[0])


@pytest.mark.parametrize("flush", [False, True])
def test_read_events_commit_without_or_with_a_flush_and_data_changes_keep_theirs(
    settings: Settings, flush: bool
) -> None:
    """`audit_flush_reads` off relaxes the flush of audit-only transactions alone: every
    transaction a data change begins commits flushed (SQLite synchronous=FULL; PostgreSQL
    synchronous_commit on, the relaxation being SET LOCAL), however audit-only appends and data
    changes alternate. On SQLite, unflushed appends commit inline on a connection of their own
    (synchronous=NORMAL); flushed ones on the writer connection, which stays FULL."""

    async def scenario() -> None:
        async with audit(settings) as service:
            service.flush_reads = flush
            actor = Actor(client_id="flush-tests", client_address="127.0.0.1")
            inline = service.store.inline
            for round_ in range(2):
                await service.record([service.event(actor, Happening("read", patient="p1"))])
                if not settings.database_url:
                    assert inline is not None
                    assert inline.commits == (0 if flush else round_ + 1)
                    async with service.store.writer.connect() as connection:
                        mode = await dialects.run_on_sqlite(connection, synchronous_mode)
                        assert mode == 2, round_  # FULL
                    if not flush:  # 1: NORMAL
                        assert inline.synchronous() == 1
                async with service.store.writer.begin() as connection:  # a data change's
                    if settings.database_url:
                        setting = "SHOW synchronous_commit"
                        assert (await connection.execute(text(setting))).scalar() == "on"
                    else:  # 2: FULL
                        mode = (await connection.execute(text("PRAGMA synchronous"))).scalar()
                        assert mode == 2, round_
            verified = await audit_verify.verify(service.store, Keys([service.key]))
            assert verified.failure is None
            assert verified.records == 2

    asyncio.run(scenario())


def test_concurrent_records_and_data_changes_share_the_writer_and_one_chain(
    settings: Settings,
) -> None:
    """Hundreds of concurrent audit appends (group-committed, several batches per leased
    writer connection) interleaved with data-change transactions on the same writer: every
    append completes, none is lost or doubled, the chain verifies, and every data change gets
    the writer with its flushed commit."""

    async def scenario() -> None:
        async with audit(settings) as service:
            service.flush_reads = False
            actor = Actor(client_id="concurrency-tests", client_address="127.0.0.1")

            async def read_event(n: int) -> None:
                happening = Happening("read", patient=f"p{n % 7}", request_id=f"r{n}")
                await service.record([service.event(actor, happening)])

            async def data_change() -> int:
                async with service.store.writer.begin() as connection:
                    if settings.database_url:
                        setting = "SHOW synchronous_commit"
                        on = (await connection.execute(text(setting))).scalar() == "on"
                        return 2 if on else 0
                    return int((await connection.execute(text("PRAGMA synchronous"))).scalar())

            results = await asyncio.gather(
                *(read_event(n) for n in range(300)), *(data_change() for _ in range(20))
            )
            assert results[300:] == [2] * 20  # FULL on SQLite; "on" on PostgreSQL
            verified = await audit_verify.verify(service.store, Keys([service.key]))
            assert verified.failure is None
            assert verified.records == 300

    asyncio.run(scenario())


# -- records written before bodies were sealed (0011) ----------------------------------------
def test_records_from_before_sealing_stay_readable_and_verifiable(settings: Settings) -> None:
    """A trail written at 0009 (clear bodies, chained as they were), upgraded: its records read
    and verify as they are, new ones are sealed, and a clear body after them is refused."""

    async def run() -> None:
        legacy = await _legacy_trail(settings.resolved_database_url())
        async with audit(settings) as service:
            store = service.store
            await write(service, 2, 1_790_000_000_000_000)
            checked = await audit_verify.verify(store, Keys([service.key]), open_bodies=True)
            assert checked.ok, checked.failure
            assert checked.bodies == {"clear": 3, "opened": 2}
            found = await store.search(AuditQuery(patient="legacy", limit=10))
            assert sorted(body for _, body in found) == sorted(r.body for r in legacy)
            stored = [row.record async for row in store.rows(0)]
            assert [r.key_id is not None for r in stored] == [False] * 3 + [True] * 2
            await _slip_a_clear_body(store, 5, legacy[0].body)
            refused = await audit_verify.verify(store, Keys([service.key]))
            assert refused.failure is not None
            assert refused.failure.seq == 5
            assert "a body in clear where the server seals" in refused.failure.reason
            with pytest.raises(IntegrityFailure):
                await store.search(AuditQuery(limit=10))

    asyncio.run(run())


async def _legacy_trail(url: str) -> list[AuditRecord]:
    """Three records chained into a database at 0009, as the server wrote them then: the whole
    AuditEvent as the body (not yet its facts)."""
    built = [
        build(
            uuid.uuid4().hex,
            1_780_000_000_000_000 + n,
            ACTOR,
            Happening("search-type", patient="legacy", query=b"family=Legacy"),
            "santinel@before",
        )
        for n in range(3)
    ]
    records = [dataclasses.replace(r, body=render(r.body)) for r in built]
    repository = SqlRepository(url)
    try:
        async with repository.writer.begin() as connection:
            await connection.run_sync(_upgrade_to, "0010_token_text_partial")
            previous = GENESIS
            for seq, record in enumerate(records, start=1):
                previous = link(previous, seq, record)
                columns = {k: v for k, v in record.__dict__.items() if k != "key_id"}
                await connection.execute(
                    insert(audit_event).values(seq=seq, **columns, hash=previous)
                )
        await migrations.upgrade(repository.writer)
    finally:
        await repository.close()
    return records


def _upgrade_to(connection: Connection, revision: str) -> None:
    config = migrations.alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def _slip_a_clear_body(store: SqlAuditStore, seq: int, body: bytes) -> None:
    """The last record's body replaced by a clear one, its hash recomputed (the chain's
    algorithm is public)."""
    rows = [row async for row in store.rows(seq - 2)]
    record = dataclasses.replace(rows[-1].record, body=body, key_id=None)
    chain_hash = link(rows[0].hash, seq, record)
    async with store.writer.begin() as connection:
        await connection.execute(
            update(audit_event)
            .where(audit_event.c.seq == seq)
            .values(body=body, key_id=None, hash=chain_hash)
        )
