"""SQL storage of the audit trail: append (chained, serialized), read back, checkpoints, prune.

`append` runs inside whatever transaction the caller holds: the data change's own transaction
(so a change without its audit record cannot commit) or a batch of its own. Appends are
serialized on one lock (PostgreSQL advisory lock; SQLite's writer lock), so every node extends
one chain.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from santinel.audit.chain import ChainedRow, link
from santinel.audit.checkpoint import Checkpoint
from santinel.audit.records import GENESIS, AuditRecord
from santinel.storage.base import AuditQuery
from santinel.storage.sql import dialects
from santinel.storage.sql.tables import audit_anchor, audit_checkpoint, audit_event

CHAIN_LOCK = "santinel-audit-chain"
CHAIN_LOCK_ID = dialects.lock_id(CHAIN_LOCK)
READ_BATCH = 2000
# append(records, flush) -> the last seq: `SqlAuditStore.appender`'s leased appends
Appender = Callable[[Sequence[AuditRecord], bool], Awaitable[int]]


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    signature: str  # empty for the genesis anchor


GENESIS_ANCHOR = Anchor(0, GENESIS, "")


async def append(connection: AsyncConnection, records: Sequence[AuditRecord]) -> int:
    """Chain `records` after the current head, in the caller's transaction; the last seq."""
    if not records:
        return 0
    await dialects.serialize_on(connection, CHAIN_LOCK)
    seq, previous = await _head(connection)
    rows: list[dict[str, Any]] = []
    for record in records:
        seq += 1
        previous = link(previous, seq, record)
        rows.append({"seq": seq, **record.__dict__, "hash": previous})
    await connection.execute(insert(audit_event), rows)
    return seq


async def _head(connection: AsyncConnection) -> tuple[int, str]:
    last = (
        await connection.execute(
            select(audit_event.c.seq, audit_event.c.hash)
            .order_by(audit_event.c.seq.desc())
            .limit(1)
        )
    ).first()
    if last is not None:
        return int(last.seq), str(last.hash)
    anchor = await _anchor(connection)
    return anchor.seq, anchor.hash


async def _anchor(connection: AsyncConnection) -> Anchor:
    row = (await connection.execute(select(audit_anchor).where(audit_anchor.c.id == 1))).first()
    return Anchor(int(row.seq), str(row.hash), str(row.signature)) if row else GENESIS_ANCHOR


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        event_id=row.event_id,
        recorded_us=row.recorded_us,
        patient=row.patient,
        client_id=row.client_id,
        user_ref=row.user_ref,
        action=row.action,
        outcome=row.outcome,
        subtype=row.subtype,
        entity=row.entity,
        body=_bytes(row.body),
    )


def _bytes(value: Any) -> bytes:
    """The stored body as bytes, whatever a hand-edited SQLite row holds (TEXT, a number):
    verification must report such a row as altered, not crash on it."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


def _append_sqlite(
    records: Sequence[AuditRecord], flush: bool, connection: sqlite3.Connection
) -> int:
    """`append` as one transaction run whole on the sqlite3 connection, in its driver thread:
    through SQLAlchemy and aiosqlite every statement is a thread hop of its own (a dozen per
    group commit), which cost more CPU than everything else an audited read does.

    `flush=False`: commit without the fsync (`synchronous=NORMAL`, WAL mode): the records
    survive a crash of this process at once, and a power loss from the next flushed commit
    (any data change) or WAL checkpoint on. The connection stays so for the next appends;
    every transaction begun through SQLAlchemy (data changes) sets FULL back first
    (`dialects.sqlite_commits_flush`)."""
    dialects.sqlite_commits_flush(connection, flush)
    return _append_sqlite_transaction(records, connection)


def _append_sqlite_transaction(
    records: Sequence[AuditRecord], connection: sqlite3.Connection
) -> int:
    connection.execute("BEGIN IMMEDIATE")  # the chain lock: SQLite's write lock
    try:
        seq = chain_sqlite(records, connection)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return seq


def chain_sqlite(records: Sequence[AuditRecord], connection: sqlite3.Connection) -> int:
    """`append`'s head, links and insert on the sqlite3 connection, inside the transaction it
    holds (whose write lock is the chain lock); the last seq."""
    seq, previous = _sqlite_head(connection)
    values: list[Any] = []
    for record in records:
        seq += 1
        previous = link(previous, seq, record)
        values += (seq, *(getattr(record, c) for c in RECORD_COLUMNS), previous)
    # Rows by the multi-row INSERT, not executemany: sqlite3 lets go of the GIL around every
    # statement step, and the event loop, waiting for it, takes it back each time; with the
    # server on one core every such hand-over is a context switch (a group commit of 8 reads:
    # 8 steps instead of 1).
    width = len(RECORD_COLUMNS) + 2
    for start in range(0, len(values), width * ROWS_PER_INSERT):
        chunk = values[start : start + width * ROWS_PER_INSERT]
        connection.execute(_sqlite_insert_rows(len(chunk) // width), chunk)
    return seq


async def _append_postgres(records: Sequence[AuditRecord], flush: bool, connection: Any) -> int:
    """`append` on the asyncpg connection itself: the same statements as `append` (advisory
    lock, head, insert), without SQLAlchemy's per-statement cost (half a group commit's CPU).

    `flush=False`: `synchronous_commit = off` for this transaction only: the commit does not
    wait for the WAL flush (PostgreSQL flushes it within `wal_writer_delay`); a crash of the
    database server can lose that last fraction of a second, never corrupt the chain."""
    # one round trip to open the transaction, relax its flush and take the chain lock (a
    # constant number), as one simple query; the transaction is ours to end
    relaxed = "" if flush else "SET LOCAL synchronous_commit = off; "
    await connection.execute(f"BEGIN; {relaxed}SELECT pg_advisory_xact_lock({CHAIN_LOCK_ID})")
    try:
        head = await connection.fetchrow(HEAD_SQL)
        if head is None:
            head = await connection.fetchrow(ANCHOR_SQL)
        seq, previous = (int(head[0]), str(head[1])) if head else (0, GENESIS)
        rows = []
        for record in records:
            seq += 1
            previous = link(previous, seq, record)
            rows.append((seq, *(getattr(record, c) for c in RECORD_COLUMNS), previous))
        await connection.executemany(POSTGRES_INSERT, rows)
        await connection.execute("COMMIT")
    except BaseException:
        if connection.is_in_transaction():
            await connection.execute("ROLLBACK")
        raise
    return seq


RECORD_COLUMNS = tuple(f.name for f in fields(AuditRecord))
SQLITE_INSERT = (
    f"INSERT INTO {audit_event.name} (seq, {', '.join(RECORD_COLUMNS)}, hash) "  # noqa: S608
    f"VALUES ({', '.join('?' for _ in range(len(RECORD_COLUMNS) + 2))})"
)
ROWS_PER_INSERT = 32  # 384 bound values: far below SQLite's limit, few cached statements


@functools.lru_cache(maxsize=ROWS_PER_INSERT)
def _sqlite_insert_rows(count: int) -> str:
    row = f"({', '.join('?' for _ in range(len(RECORD_COLUMNS) + 2))})"
    return SQLITE_INSERT.split(" VALUES ", 1)[0] + " VALUES " + ", ".join([row] * count)


POSTGRES_INSERT = (
    f"INSERT INTO {audit_event.name} (seq, {', '.join(RECORD_COLUMNS)}, hash) "  # noqa: S608
    f"VALUES ({', '.join(f'${n}' for n in range(1, len(RECORD_COLUMNS) + 3))})"
)
HEAD_SQL = "SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1"
ANCHOR_SQL = "SELECT seq, hash FROM audit_anchor WHERE id = 1"


def _sqlite_head(connection: sqlite3.Connection) -> tuple[int, str]:
    last = connection.execute(HEAD_SQL).fetchone()
    if last is None:
        last = connection.execute(ANCHOR_SQL).fetchone()
    return (int(last[0]), str(last[1])) if last else (GENESIS_ANCHOR.seq, GENESIS_ANCHOR.hash)


class SqlAuditStore:
    def __init__(self, reader: AsyncEngine, writer: AsyncEngine) -> None:
        self.reader = reader
        self.writer = writer
        self._sqlite = dialects.is_sqlite(str(writer.url))

    async def write(self, records: Sequence[AuditRecord], *, flush: bool = True) -> int:
        """Append in a transaction of their own (events of reads, denials, sign-ins); `flush`:
        wait for the disk (fsync) before returning, see `_append_sqlite`/`_append_postgres`."""
        if not records:
            return 0
        async with self.appender() as append:
            return await append(records, flush)

    @contextlib.asynccontextmanager
    async def appender(self) -> AsyncIterator[Appender]:
        """One writer connection checked out for several appends, each its own transaction:
        a pool check-out and check-in through SQLAlchemy's async layer cost about 60 µs of CPU
        (three greenlet switches), more than an audited read's own INSERT; a group-commit
        flusher that finds more batches waiting appends them all on one lease."""
        async with self.writer.connect() as connection:
            if self._sqlite:  # the writer pool's one connection: this process's turn

                async def append(records: Sequence[AuditRecord], flush: bool) -> int:
                    work = functools.partial(_append_sqlite, list(records), flush)
                    return await dialects.run_on_sqlite(connection, work)

            else:

                async def append(records: Sequence[AuditRecord], flush: bool) -> int:
                    work = functools.partial(_append_postgres, list(records), flush)
                    return await dialects.run_on_asyncpg(connection, work)

            yield append

    async def head(self) -> tuple[int, str]:
        async with self.reader.connect() as connection:
            return await _head(connection)

    async def anchor(self) -> Anchor:
        async with self.reader.connect() as connection:
            return await _anchor(connection)

    async def rows(
        self,
        after_seq: int = 0,
        *,
        since_us: int | None = None,
        until_us: int | None = None,
        through_seq: int | None = None,
    ) -> AsyncIterator[ChainedRow]:
        """Every record after `after_seq` (up to `through_seq`; recorded in [since, until)
        when given), in chain order, read in batches: never the whole log in memory."""
        cursor = after_seq
        while True:
            statement = select(audit_event).where(audit_event.c.seq > cursor)
            if through_seq is not None:
                statement = statement.where(audit_event.c.seq <= through_seq)
            if since_us is not None:
                statement = statement.where(audit_event.c.recorded_us >= since_us)
            if until_us is not None:
                statement = statement.where(audit_event.c.recorded_us < until_us)
            async with self.reader.connect() as connection:
                batch = (
                    await connection.execute(
                        statement.order_by(audit_event.c.seq).limit(READ_BATCH)
                    )
                ).all()
            for row in batch:
                yield ChainedRow(int(row.seq), _record(row), str(row.hash))
            if len(batch) < READ_BATCH:
                return
            cursor = int(batch[-1].seq)

    async def count(self, since_us: int | None = None, until_us: int | None = None) -> int:
        """How many records were recorded in [since, until) (a progress bar's total)."""
        statement = select(func.count()).select_from(audit_event)
        if since_us is not None:
            statement = statement.where(audit_event.c.recorded_us >= since_us)
        if until_us is not None:
            statement = statement.where(audit_event.c.recorded_us < until_us)
        async with self.reader.connect() as connection:
            return int((await connection.execute(statement)).scalar_one())

    async def search(self, query: AuditQuery) -> list[tuple[int, bytes]]:
        """(seq, AuditEvent JSON) of the matching records, newest first."""
        statement = _filtered(select(audit_event.c.seq, audit_event.c.body), query)
        statement = statement.order_by(audit_event.c.seq.desc()).limit(query.limit)
        async with self.reader.connect() as connection:
            return [(int(r.seq), bytes(r.body)) for r in await connection.execute(statement)]

    # -- checkpoints and pruning ----------------------------------------------------------
    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        async with self.writer.begin() as connection:
            # serialized like appends: two nodes signing the same head insert it once
            await dialects.serialize_on(connection, CHAIN_LOCK)
            known = await connection.execute(
                select(audit_checkpoint.c.seq).where(audit_checkpoint.c.seq == checkpoint.seq)
            )
            if known.first() is None:
                await connection.execute(insert(audit_checkpoint).values(**checkpoint.__dict__))

    async def checkpoints(self) -> list[Checkpoint]:
        async with self.reader.connect() as connection:
            rows = await connection.execute(
                select(audit_checkpoint).order_by(audit_checkpoint.c.seq)
            )
            return [Checkpoint(int(r.seq), r.hash, int(r.created_us), r.signature) for r in rows]

    async def prune(self, through_seq: int, anchor: Anchor) -> int:
        """Delete records up to `through_seq` (their hash is `anchor.hash`) and their checkpoints;
        the anchor, signed by the caller, lets the rest verify. Returns how many were deleted.
        An anchor never moves back: a prune older than the current anchor (another node's
        retention ran first) deletes nothing and keeps the newer anchor."""
        async with self.writer.begin() as connection:
            await dialects.serialize_on(connection, CHAIN_LOCK)
            if (await _anchor(connection)).seq >= through_seq:
                return 0
            last = (
                await connection.execute(
                    select(audit_event.c.hash).where(audit_event.c.seq == through_seq)
                )
            ).first()
            if anchor.seq != through_seq or last is None or last.hash != anchor.hash:
                raise ValueError("the anchor must name the last pruned record and its hash")
            result = await connection.execute(
                delete(audit_event).where(audit_event.c.seq <= through_seq)
            )
            await connection.execute(
                delete(audit_checkpoint).where(audit_checkpoint.c.seq < through_seq)
            )
            await connection.execute(delete(audit_anchor))
            await connection.execute(
                insert(audit_anchor).values(
                    id=1, seq=anchor.seq, hash=anchor.hash, signature=anchor.signature
                )
            )
        return int(result.rowcount)

    async def seq_before(self, recorded_us: int) -> tuple[int, str] | None:
        """The last record recorded before `recorded_us` (where pruning by age stops)."""
        async with self.reader.connect() as connection:
            row = (
                await connection.execute(
                    select(audit_event.c.seq, audit_event.c.hash)
                    .where(audit_event.c.recorded_us < recorded_us)
                    .order_by(audit_event.c.seq.desc())
                    .limit(1)
                )
            ).first()
        return (int(row.seq), str(row.hash)) if row else None


def _filtered(statement: Select[Any], query: AuditQuery) -> Select[Any]:
    column_filters = {
        audit_event.c.patient: query.patient,
        audit_event.c.client_id: query.client_id,
        audit_event.c.user_ref: query.user_ref,
        audit_event.c.outcome: query.outcome,
        audit_event.c.action: query.action,
        audit_event.c.subtype: query.subtype,
        audit_event.c.entity: query.entity,
        audit_event.c.event_id: query.event_id,
    }
    for column, value in column_filters.items():
        if value is not None:
            statement = statement.where(column == value)
    if query.since_us is not None:
        statement = statement.where(audit_event.c.recorded_us >= query.since_us)
    if query.until_us is not None:
        statement = statement.where(audit_event.c.recorded_us < query.until_us)
    if query.before_seq is not None:
        statement = statement.where(audit_event.c.seq < query.before_seq)
    return statement
