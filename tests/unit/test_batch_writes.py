"""`batch_writes.send` on SQLite (sqlite3's executemany in the driver's thread) stores exactly what
SQLAlchemy's executemany stores, deletes what it is told to, and fails as SQLAlchemy would."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError

from santinel.storage.sql import batch_writes, dialects
from santinel.storage.sql.batch_writes import Batch
from santinel.storage.sql.tables import metadata, resource, search_quantity, search_token

TOKENS = [
    {"res_type": "Observation", "res_id": f"o{n}", "param": "code", "system": "http://loinc.org",
     "code": f"{n}-1", "text": None if n % 2 else "heart rate"}
    for n in range(5)
]  # fmt: skip
QUANTITIES = [
    {"res_type": "Observation", "res_id": "o1", "param": "value-quantity", "value": 1.5,
     "low": 1.45, "high": 1.55, "system": None, "code": "mg", "unit": "mg"},
    {"res_type": "Observation", "res_id": "o2", "param": "value-quantity", "value": 2.0,
     "low": -math.inf, "high": math.inf, "system": "http://unitsofmeasure.org", "code": None,
     "unit": None},
]  # fmt: skip
CURRENT = {"res_type": "Patient", "res_id": "p1", "version": 1, "last_updated": 1,
           "deleted": False, "body": b"\x00sealed", "key_id": "k1"}  # fmt: skip


async def contents(path: Path, send: bool) -> dict[str, list[Any]]:
    """The tables after the same rows went through `send` or through SQLAlchemy."""
    reader, writer = dialects.create_engines(f"sqlite+aiosqlite:///{path}")
    try:
        async with writer.begin() as connection:
            await connection.run_sync(metadata.create_all)
        async with writer.begin() as connection:
            if send:
                await batch_writes.send(connection, Batch(inserts=_inserts()))
                await batch_writes.send(
                    connection, Batch(deletions=[(search_token, "Observation", ["o3", "o4"])])
                )
            else:
                for table, rows in _inserts():
                    await connection.execute(insert(table), rows)
                await connection.execute(
                    search_token.delete().where(search_token.c.res_id.in_(["o3", "o4"]))
                )
        async with reader.connect() as connection:
            return {t.name: sorted(map(tuple, await connection.execute(select(t)))) for t in TABLES}
    finally:
        await reader.dispose()
        await writer.dispose()


TABLES: list[Table] = [resource, search_token, search_quantity]


def _inserts() -> list[tuple[Table, list[dict[str, Any]]]]:
    return [(resource, [CURRENT]), (search_token, TOKENS), (search_quantity, QUANTITIES)]


def test_sent_rows_are_those_sqlalchemy_stores(tmp_path: Path) -> None:
    sent = anyio.run(contents, tmp_path / "sent.db", True)
    reference = anyio.run(contents, tmp_path / "reference.db", False)
    assert sent == reference
    assert len(sent["search_token"]) == 3  # two deleted


async def _insert_twice(path: Path) -> None:
    reader, writer = dialects.create_engines(f"sqlite+aiosqlite:///{path}")
    try:
        async with writer.begin() as connection:
            await connection.run_sync(metadata.create_all)
        async with writer.begin() as connection:
            await batch_writes.send(connection, Batch(inserts=[(resource, [CURRENT, CURRENT])]))
    finally:
        await reader.dispose()
        await writer.dispose()


def test_a_duplicate_fails_as_an_integrity_error(tmp_path: Path) -> None:
    """`run_write` retries a transaction on IntegrityError (a concurrent creation)."""
    with pytest.raises(IntegrityError):
        anyio.run(_insert_twice, tmp_path / "twice.db")
