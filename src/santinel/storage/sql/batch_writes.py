"""The rows a write transaction batched, sent in as few round trips as each driver allows.

A 100-entry Bundle ends with a few thousand rows for a dozen tables (current versions, history,
index rows) and deletions of the index rows its updates replace. Through SQLAlchemy each table's
executemany builds a parameter set per row, and on SQLite each statement is three hops to
aiosqlite's thread (cursor, executemany, close), which under load cost more than the inserts.

- SQLite: every statement in ONE hop, with sqlite3's own executemany in the driver's thread
  (inside the transaction SQLAlchemy began, whose write lock is the audit chain's lock: nothing
  commits here);
- PostgreSQL: one SQLAlchemy executemany per table (asyncpg sends a table's rows together).

The statements and rows are the same on both; driver errors come back as SQLAlchemy's (an
`IntegrityError` still makes `run_write` retry the transaction).
"""

from __future__ import annotations

import functools
import operator
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, delete, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from santinel.storage.sql import audit_store, dialects
from santinel.storage.sql.audit_sealing import SealingPlan

Rows = list[dict[str, Any]]


@dataclass
class Batch:
    """Deletions (of a type's resources' rows) first, then inserts in the order given, then
    audit records sealed and appended to the chain (`audit_store.append`)."""

    deletions: list[tuple[Table, str, list[str]]] = field(default_factory=list)
    inserts: list[tuple[Table, Rows]] = field(default_factory=list)
    audit: SealingPlan | None = None

    def insert(self, table: Table, rows: Rows) -> None:
        if rows:
            self.inserts.append((table, rows))


async def send(connection: AsyncConnection, batch: Batch) -> None:
    if not batch.deletions and not batch.inserts and not batch.audit:
        return
    if connection.dialect.name == "sqlite":
        await dialects.run_on_sqlite(connection, functools.partial(_send_sqlite, batch))
        return
    for table, resource_type, ids in batch.deletions:
        await connection.execute(
            delete(table).where(table.c.res_type == resource_type, table.c.res_id.in_(ids))
        )
    for table, rows in batch.inserts:
        await connection.execute(insert(table), rows)
    if batch.audit is not None:
        await audit_store.append(connection, batch.audit)


def _send_sqlite(batch: Batch, connection: sqlite3.Connection) -> None:
    statement = None
    try:
        for table, resource_type, ids in batch.deletions:
            statement = _sqlite_delete(table.name, len(ids))
            connection.execute(statement, (resource_type, *ids))
        for table, rows in batch.inserts:
            # every row of a table's batch has the same keys (`IndexBuffer`, `write_version`);
            # bound by position (by name, sqlite3 makes a string per value to look it up)
            columns = tuple(rows[0])
            statement = _sqlite_insert(table.name, columns)
            connection.executemany(statement, map(_values_of(columns), rows))
        if batch.audit is not None and batch.audit.records:
            statement = audit_store.SQLITE_INSERT
            audit_store.chain_sqlite(batch.audit, connection)
    except sqlite3.Error as exc:  # as SQLAlchemy would raise it (values hidden, as configured)
        raise DBAPIError.instance(
            statement, None, exc, sqlite3.Error, hide_parameters=True
        ) from exc


@functools.lru_cache(maxsize=256)
def _sqlite_insert(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(columns)
    values = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({names}) VALUES ({values})"  # noqa: S608 (our own names)


def _values_of(columns: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    if len(columns) == 1:  # itemgetter of one key gives the value, not a 1-tuple
        return lambda row: (row[columns[0]],)
    return operator.itemgetter(*columns)


@functools.lru_cache(maxsize=256)
def _sqlite_delete(table: str, count: int) -> str:
    marks = ", ".join("?" * count)
    return f"DELETE FROM {table} WHERE res_type = ? AND res_id IN ({marks})"  # noqa: S608
