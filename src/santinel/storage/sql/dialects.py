"""The ONLY place where SQLite and PostgreSQL differ: engines, locking, conflict detection."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolResetState
from sqlalchemy.util import await_only

from santinel.errors import TooCostly

SQLITE_BUSY_TIMEOUT_MS = 10_000
T = TypeVar("T")
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # FULL: an acknowledged write survives power loss and kill -9, not only a crash.
    "PRAGMA synchronous=FULL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_file(url: str) -> Path | None:
    """The database file of a file-backed SQLite URL; None for any other database (in memory,
    a `file:` URI, query options, PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.query:
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def create_engines(url: str, pool_size: int = 20) -> tuple[AsyncEngine, AsyncEngine]:
    """(reader, writer) engines. On SQLite the writer takes the write lock at BEGIN (IMMEDIATE)
    so check-then-write sequences are serialized; readers never block writers (WAL).

    PostgreSQL: one engine keeping `pool_size` connections. Past it, overflow connections are
    opened and closed again on return: under a steady load above the pool, every request paid
    a new connection (asyncpg's connect, a TLS attempt, the backend's start), about 1 ms of
    CPU; with 10 connections for 16 requests in flight, a read by id cost a fifth more CPU and
    a third fewer reads were served per second (`bench.core --backend postgres`)."""
    # hide_parameters: a database error's message (logged with its traceback when a request
    # fails unexpectedly) must not carry the statement's values: names, identifiers, dates.
    if not is_sqlite(url):
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=max(1, pool_size // 2),
            hide_parameters=True,
            pool_reset_on_return=None,
        )
        _ping_after_idle(engine)
        _reset_only_when_needed(
            engine,
            lambda driver: bool(driver.is_in_transaction()),
            # asyncpg's own ROLLBACK: SQLAlchemy's adapter only ends transactions it began
            lambda driver: await_only(driver.execute("ROLLBACK")),
        )
        return engine, engine
    reader = create_async_engine(
        url, pool_size=8, max_overflow=0, hide_parameters=True, pool_reset_on_return=None
    )
    writer = create_async_engine(
        url,
        pool_size=1,
        max_overflow=0,
        pool_timeout=60,
        hide_parameters=True,
        pool_reset_on_return=None,
    )
    for engine, begin in ((reader, "BEGIN"), (writer, "BEGIN IMMEDIATE")):
        _configure_sqlite(engine, begin)
        _reset_only_when_needed(
            engine,
            lambda driver: bool(driver._conn.in_transaction),
            lambda driver: await_only(driver.execute("ROLLBACK")),
        )
    return reader, writer


PING_AFTER_IDLE_SECONDS = 5.0


def _ping_after_idle(engine: AsyncEngine) -> None:
    """Check a pooled connection is alive before use only when it sat idle a while.

    `pool_pre_ping` pings at every check-out: three round trips (BEGIN, ping, ROLLBACK through
    the asyncpg adapter) before each request's first query, more than a simple read costs.
    A connection used a moment ago is alive (and a server that restarted since is detected by
    the failing statement, after which SQLAlchemy discards the whole pool); one that idled
    while the database may have restarted or a firewall may have dropped it is pinged, and
    replaced when the ping fails."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:  # the pool retries with a new connection
            raise DisconnectionError("a pooled connection did not answer a ping") from exc


def _reset_only_when_needed(
    engine: AsyncEngine,
    in_transaction: Callable[[Any], bool],
    rollback: Callable[[Any], object],
) -> None:
    """Roll a connection back on its return to the pool only when a transaction is still open.

    The pool's default rollback-on-return costs a round trip (a thread hop on SQLite) at every
    check-in, most of it after transactions that already ended (committed, rolled back, or a
    raw transaction run whole): a tenth of a millisecond of CPU per request. SQLAlchemy's own
    transactions roll back when their connection closes; this catches anything else left open
    (`in_transaction` asks the driver, without a round trip)."""

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, record: Any, state: PoolResetState) -> None:
        if not state.asyncio_safe or state.transaction_was_reset:
            return  # being discarded (not asyncio-safe), or SQLAlchemy rolled it back already
        driver = dbapi_connection.driver_connection
        if driver is not None and in_transaction(driver):
            rollback(driver)


async def run_on_sqlite(connection: AsyncConnection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` on the sqlite3 connection behind `connection`, in its aiosqlite thread, in ONE
    hop (aiosqlite's own queue, so it runs in order with the connection's other statements).
    For a short, hot transaction: `work` issues its own BEGIN IMMEDIATE and COMMIT."""
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection  # aiosqlite.Connection (its `_conn`: see _install_deadline)
    if driver is None:
        raise RuntimeError("no SQLite connection")
    result: T = await driver._execute(work, _sqlite3_of(driver))
    return result


async def run_on_asyncpg(connection: AsyncConnection, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work` with the asyncpg connection behind `connection` (PostgreSQL): for a short,
    hot transaction of its own (`work` opens it), without SQLAlchemy's per-statement cost."""
    raw = await connection.get_raw_connection()
    if raw.driver_connection is None:
        raise RuntimeError("no PostgreSQL connection")
    return await work(raw.driver_connection)


def _configure_sqlite(engine: AsyncEngine, begin: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions are not what we want).
        dbapi_connection.isolation_level = None
        _install_deadline(dbapi_connection, record)
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # every transaction through SQLAlchemy (data changes, their audit records) commits
        # with the fsync, whatever an audit-only append left the connection at
        relaxed = id(_sqlite3_of(connection.connection.driver_connection))
        if relaxed in _relaxed_sqlite:
            connection.exec_driver_sql("PRAGMA synchronous=FULL")
            _relaxed_sqlite.discard(relaxed)
        connection.exec_driver_sql(begin)


# The sqlite3 connections (by id) currently at `synchronous=NORMAL`: commits that skip the fsync
# (audit-only appends, `audit_flush_reads = false`). Kept in Python so that a run of such
# appends sets it once instead of twice per group commit (every statement lets the driver
# thread and the event loop trade the GIL). A stale id after a connection is closed can only
# make a PRAGMA be issued for nothing, or an append keep FULL: never a data change unflushed.
_relaxed_sqlite: set[int] = set()


def _sqlite3_of(driver: Any) -> sqlite3.Connection:
    """The sqlite3 connection behind an aiosqlite one (its thread's own object)."""
    connection: sqlite3.Connection = driver._conn
    return connection


def sqlite_transaction(
    connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]
) -> T:
    """`work` in a write transaction of its own on the sqlite3 connection (BEGIN IMMEDIATE: the
    write lock from the start), committed, or rolled back whole if anything fails."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = work(connection)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return result


def sqlite_commits_flush(connection: sqlite3.Connection, flush: bool) -> None:
    """Make the next commits of `connection` wait for the disk (`synchronous=FULL`) or not
    (`NORMAL`: in WAL mode they survive a crash of the process, and reach the disk with the
    next flushed commit or checkpoint); the PRAGMA only when that changes. Outside a
    transaction."""
    key = id(connection)
    if flush and key in _relaxed_sqlite:
        connection.execute("PRAGMA synchronous=FULL")
        _relaxed_sqlite.discard(key)
    elif not flush and key not in _relaxed_sqlite:
        connection.execute("PRAGMA synchronous=NORMAL")
        _relaxed_sqlite.add(key)


def _install_deadline(dbapi_connection: Any, record: Any) -> None:
    """A progress handler that aborts the running statement once the connection's deadline has
    passed: SQLite's way to cancel a query (the handler runs in the driver's own thread)."""
    budget: dict[str, float | None] = {"deadline": None}
    record.info["budget"] = budget

    def over_budget() -> int:
        deadline = budget["deadline"]
        return 1 if deadline is not None and time.monotonic() > deadline else 0

    # aiosqlite keeps the sqlite3 connection it drives in `_conn`.
    dbapi_connection.driver_connection._conn.set_progress_handler(over_budget, 20_000)


@contextlib.asynccontextmanager
async def time_budget(connection: AsyncConnection, seconds: float) -> AsyncIterator[None]:
    """Cancel statements of `connection` that run longer than `seconds` (→ `TooCostly`).

    On PostgreSQL the search is also planned for its own values, every time: asyncpg prepares
    statements, and after five runs PostgreSQL may switch to a generic plan made without the
    values, which cannot tell a patient (ten rows) from a LOINC code (thirty thousand) and starts
    from either: `Observation?patient=X&code=Y` took 0.3 ms planned for X and Y, 700 ms generic
    at 10,000 patients (issue 3's scale benchmark). Planning costs about a millisecond."""
    if connection.dialect.name == "postgresql":
        await connection.execute(
            text(
                "SELECT set_config('statement_timeout', :timeout, true),"
                " set_config('plan_cache_mode', 'force_custom_plan', true)"
            ),
            {"timeout": str(int(seconds * 1000))},
        )
        try:
            yield
        except DBAPIError as exc:
            if _sqlstate(exc) == "57014":  # query_canceled
                raise _too_costly(seconds) from None
            raise
        return
    raw = await connection.get_raw_connection()
    budget = raw.info.get("budget", {})
    budget["deadline"] = time.monotonic() + seconds
    try:
        yield
    except DBAPIError as exc:
        if "interrupted" in str(exc.orig):
            raise _too_costly(seconds) from None
        raise
    finally:
        budget["deadline"] = None


def _too_costly(seconds: float) -> TooCostly:
    return TooCostly(
        f"The search took longer than the {seconds:g} s this server allows; narrow it down."
    )


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return str(code) if code else None


async def serialize_on(connection: AsyncConnection, key: str) -> None:
    """Make concurrent transactions on the same `key` run one after the other.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing to do, the writer already
    holds the database write lock since BEGIN IMMEDIATE.
    """
    if connection.dialect.name != "postgresql":
        return
    await connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id(key)})


def lock_id(key: str) -> int:
    """The PostgreSQL advisory lock number of `key`."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


def is_write_conflict(exc: DBAPIError) -> bool:
    """Errors after which re-running the whole transaction is the right answer."""
    if isinstance(exc, IntegrityError):
        return True
    if _sqlstate(exc) in ("40001", "40P01"):  # serialization failure, deadlock
        return True
    return "database is locked" in str(exc.orig)


def lock_clause(dialect_name: str) -> bool:
    """Whether `SELECT … FOR UPDATE` is meaningful (row locks exist) on this dialect."""
    return dialect_name == "postgresql"
