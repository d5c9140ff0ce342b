"""The ONLY place where SQLite and PostgreSQL differ: engines, locking, conflict detection."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engines(url: str) -> tuple[AsyncEngine, AsyncEngine]:
    """(reader, writer) engines. On SQLite the writer takes the write lock at BEGIN (IMMEDIATE)
    so check-then-write sequences are serialized; readers never block writers (WAL)."""
    if not is_sqlite(url):
        engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
        return engine, engine
    reader = create_async_engine(url, pool_size=8, max_overflow=0)
    writer = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
    _configure_sqlite(reader, begin="BEGIN")
    _configure_sqlite(writer, begin="BEGIN IMMEDIATE")
    return reader, writer


def _configure_sqlite(engine: AsyncEngine, begin: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions are not what we want).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged write survives power loss and kill -9, not only a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


async def serialize_on(connection: AsyncConnection, key: str) -> None:
    """Make concurrent transactions on the same `key` run one after the other.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing to do, the writer already
    holds the database write lock since BEGIN IMMEDIATE.
    """
    if connection.dialect.name != "postgresql":
        return
    lock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
    await connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})


def is_write_conflict(exc: DBAPIError) -> bool:
    """Errors after which re-running the whole transaction is the right answer."""
    if isinstance(exc, IntegrityError):
        return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None) or getattr(
        getattr(exc, "orig", None), "pgcode", None
    )
    if code in ("40001", "40P01"):  # serialization failure, deadlock
        return True
    return "database is locked" in str(exc.orig)


def lock_clause(dialect_name: str) -> bool:
    """Whether `SELECT … FOR UPDATE` is meaningful (row locks exist) on this dialect."""
    return dialect_name == "postgresql"
