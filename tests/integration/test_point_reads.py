"""The point-read fast lanes answer exactly what the SQLAlchemy path answers, on both backends,
and step aside (so the regular path answers) whenever they cannot."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from santinel.crypto.envelope import new_key
from santinel.crypto.key_providers import EnvKeyProvider, key_text
from santinel.fhir.resource import now_micros
from santinel.settings import to_sqlalchemy_url
from santinel.storage.base import StoredVersion, WriteTransaction
from santinel.storage.sql import migrations
from santinel.storage.sql.keystore import DataKeys
from santinel.storage.sql.point_reads import (
    PostgresPointReader,
    SqlitePointReader,
    Unavailable,
)
from santinel.storage.sql.repository import SqlRepository
from santinel.storage.sql.sealing import KeyedSealer
from santinel.types import ResourceId, ResourceType, VersionId
from tests.services import postgres_database

PATIENT = ResourceType("Patient")


async def _compare(url: str) -> None:
    repository = SqlRepository(url)
    try:
        await migrations.upgrade(repository.writer)
        provider = EnvKeyProvider(key_text(new_key()))
        keys = await DataKeys.open(provider, repository.reader, repository.writer)
        repository.use_sealer(KeyedSealer(keys))
        rid = ResourceId("fast-lane")

        async def write(tx: WriteTransaction, body: dict[str, object] | None) -> StoredVersion:
            current = await tx.current(PATIENT, rid)
            method = "DELETE" if body is None else "PUT"
            return await tx.write_version(PATIENT, rid, body, previous=current, method=method)

        await repository.run_write(lambda tx: write(tx, {"resourceType": "Patient", "id": rid}))
        await repository.run_write(lambda tx: write(tx, None))  # version 2 is a deletion
        fast = repository._point_reads
        assert fast is not None
        answers = [
            await repository.read(PATIENT, rid),
            await repository.read(PATIENT, ResourceId("absent")),
            await repository.vread(PATIENT, rid, VersionId(1)),
            await repository.vread(PATIENT, rid, VersionId(2)),
            await repository.vread(PATIENT, rid, VersionId(3)),
        ]
        repository._point_reads = None  # the regular SQLAlchemy path
        regular = [
            await repository.read(PATIENT, rid),
            await repository.read(PATIENT, ResourceId("absent")),
            await repository.vread(PATIENT, rid, VersionId(1)),
            await repository.vread(PATIENT, rid, VersionId(2)),
            await repository.vread(PATIENT, rid, VersionId(3)),
        ]
        repository._point_reads = fast
        assert answers == regular
        current, _, first, deletion, _ = answers
        assert current is not None
        assert current.deleted
        assert current.version == 2
        assert first is not None
        assert first.body is not None
        assert first.last_updated <= now_micros()
        assert deletion is not None
        assert deletion.method == "DELETE"
    finally:
        await repository.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_fast_lane_answers_like_the_regular_path(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        anyio.run(_compare, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    else:
        with postgres_database() as url:
            anyio.run(_compare, to_sqlalchemy_url(url))


def test_fast_lane_exists_only_for_file_databases(tmp_path: Path) -> None:
    assert SqlitePointReader.for_url("sqlite+aiosqlite:///:memory:") is None
    assert SqlitePointReader.for_url("sqlite+aiosqlite://") is None
    assert SqlitePointReader.for_url(f"sqlite+aiosqlite:///{tmp_path}/x.db?mode=ro") is None
    assert SqlitePointReader.for_url("postgresql+asyncpg://u@127.0.0.1/db") is None
    repository = SqlRepository("postgresql+asyncpg://u@127.0.0.1/db")
    assert isinstance(repository._point_reads, PostgresPointReader)
    anyio.run(repository.close)


def test_missing_database_steps_aside_and_the_regular_path_answers(tmp_path: Path) -> None:
    reader = SqlitePointReader(tmp_path / "not-created-yet.sqlite3")
    with pytest.raises(Unavailable):
        anyio.run(reader.current, PATIENT, ResourceId("x"))
    assert not (tmp_path / "not-created-yet.sqlite3").exists()  # never created by a read

    async def read_after_migration() -> StoredVersion | None:
        repository = SqlRepository(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
        try:
            await migrations.upgrade(repository.writer)
            return await repository.read(PATIENT, ResourceId("x"))
        finally:
            await repository.close()

    assert anyio.run(read_after_migration) is None
