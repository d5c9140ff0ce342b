"""SQL storage of the audit trail: append (sealed, chained, serialized), read back (opened),
checkpoints, prune.

`append` runs inside whatever transaction the caller holds: the data change's own transaction
(so a change without its audit record cannot commit) or a batch of its own. Appends are
serialized on one lock (PostgreSQL advisory lock; SQLite's writer lock), so every node extends
one chain. Bodies are sealed on the way in and opened on the way out (`audit_sealing`): above
this module, AuditEvents are JSON; `rows` alone yields them as stored (what the chain covers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from santinel.audit.chain import ChainedRow, link_stored
from santinel.audit.checkpoint import Checkpoint
from santinel.audit.erased import erased_view
from santinel.audit.events import MalformedFacts, render
from santinel.audit.records import GENESIS, AuditRecord
from santinel.crypto.envelope import Tampered
from santinel.storage.base import AuditQuery
from santinel.storage.sql import dialects
from santinel.storage.sql.audit_sealing import AuditSealer, NoAuditSealer, SealingPlan, stored
from santinel.storage.sql.inline_sqlite import InlineSqliteWriter
from santinel.storage.sql.sealing import KeysNotLoaded
from santinel.storage.sql.tables import (
    audit_anchor,
    audit_checkpoint,
    audit_event,
    data_key,
    keystore_state,
)

CHAIN_LOCK = "santinel-audit-chain"
LEGACY_STATE = "audit_legacy_seq"  # keystore_state: the last seq stored in clear (0011)
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


async def append(connection: AsyncConnection, plan: SealingPlan) -> int:
    """Seal and chain the plan's records after the current head (with the keys it created), in
    the caller's transaction; the last seq."""
    if not plan.records:
        return 0
    await dialects.serialize_on(connection, CHAIN_LOCK)
    if plan.key_rows:
        await connection.execute(insert(data_key), list(plan.key_rows))
    seq, previous = await _head(connection)
    rows, seq = chained(plan, seq, previous)
    await connection.execute(
        insert(audit_event), [dict(zip(ROW_COLUMNS, r, strict=True)) for r in rows]
    )
    return seq


def chained(plan: SealingPlan, seq: int, previous: str) -> tuple[list[tuple[Any, ...]], int]:
    """The rows (`ROW_COLUMNS`) of the plan's records sealed and chained after (seq, previous),
    and the last seq."""
    rows = []
    for record, key in zip(plan.records, plan.keys, strict=True):
        seq += 1
        body, key_id = stored(record, seq, key)
        previous = link_stored(previous, seq, record, body, key_id)
        rows.append(
            (
                seq,
                record.event_id,
                record.recorded_us,
                record.patient,
                record.client_id,
                record.user_ref,
                record.action,
                record.outcome,
                record.subtype,
                record.entity,
                body,
                key_id,
                previous,
            )
        )
    return rows, seq


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
        key_id=row.key_id,
    )


def _bytes(value: Any) -> bytes:
    """The stored body as bytes, whatever a hand-edited SQLite row holds (TEXT, a number):
    verification must report such a row as altered, not crash on it."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


def _append_sqlite(plan: SealingPlan, flush: bool, connection: sqlite3.Connection) -> int:
    """`append` as one transaction run whole on the sqlite3 connection, in its driver thread:
    through SQLAlchemy and aiosqlite every statement is a thread hop of its own (a dozen per
    group commit), which cost more CPU than everything else an audited read does.

    `flush=False`: commit without the fsync (`synchronous=NORMAL`, WAL mode): the records
    survive a crash of this process at once, and a power loss from the next flushed commit
    (any data change) or WAL checkpoint on. The connection stays so for the next appends;
    every transaction begun through SQLAlchemy (data changes) sets FULL back first
    (`dialects.sqlite_commits_flush`)."""
    dialects.sqlite_commits_flush(connection, flush)
    # the chain lock: SQLite's write lock, taken at BEGIN
    return dialects.sqlite_transaction(connection, functools.partial(chain_sqlite, plan))


def chain_sqlite(plan: SealingPlan, connection: sqlite3.Connection) -> int:
    """`append`'s key rows, head, seals, links and insert on the sqlite3 connection, inside the
    transaction it holds (whose write lock is the chain lock); the last seq."""
    if plan.key_rows:
        connection.executemany(SQLITE_KEY_INSERT, [_key_values(r) for r in plan.key_rows])
    rows, seq = chained(plan, *_sqlite_head(connection))
    # Rows by the multi-row INSERT, not executemany: sqlite3 lets go of the GIL around every
    # statement step, and the event loop, waiting for it, takes it back each time; with the
    # server on one core every such hand-over is a context switch (a group commit of 8 reads:
    # 8 steps instead of 1).
    for start in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[start : start + ROWS_PER_INSERT]
        connection.execute(_sqlite_insert_rows(len(chunk)), [v for row in chunk for v in row])
    return seq


async def _append_postgres(plan: SealingPlan, flush: bool, connection: Any) -> int:
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
        if plan.key_rows:
            await connection.executemany(
                POSTGRES_KEY_INSERT, [_key_values(r) for r in plan.key_rows]
            )
        rows, seq = chained(plan, seq, previous)
        await connection.executemany(POSTGRES_INSERT, rows)
        await connection.execute("COMMIT")
    except BaseException:
        if connection.is_in_transaction():
            await connection.execute("ROLLBACK")
        raise
    return seq


RECORD_COLUMNS = tuple(f.name for f in fields(AuditRecord))
ROW_COLUMNS = ("seq", *RECORD_COLUMNS, "hash")  # the order of `chained`'s tuples
KEY_COLUMNS = tuple(c.name for c in data_key.columns)
ROWS_PER_INSERT = 32  # 416 bound values: far below SQLite's limit, few cached statements


def _insert_sql(table: str, columns: Sequence[str], marks: Sequence[str], rows: int = 1) -> str:
    values = ", ".join([f"({', '.join(marks)})"] * rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}"  # noqa: S608


def _key_values(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in KEY_COLUMNS)


SQLITE_INSERT = _insert_sql(audit_event.name, ROW_COLUMNS, ["?"] * len(ROW_COLUMNS))
POSTGRES_INSERT = _insert_sql(
    audit_event.name, ROW_COLUMNS, [f"${n}" for n in range(1, len(ROW_COLUMNS) + 1)]
)
SQLITE_KEY_INSERT = _insert_sql(data_key.name, KEY_COLUMNS, ["?"] * len(KEY_COLUMNS))
POSTGRES_KEY_INSERT = _insert_sql(
    data_key.name, KEY_COLUMNS, [f"${n}" for n in range(1, len(KEY_COLUMNS) + 1)]
)


@functools.lru_cache(maxsize=ROWS_PER_INSERT)
def _sqlite_insert_rows(count: int) -> str:
    return _insert_sql(audit_event.name, ROW_COLUMNS, ["?"] * len(ROW_COLUMNS), count)


HEAD_SQL = "SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1"
ANCHOR_SQL = "SELECT seq, hash FROM audit_anchor WHERE id = 1"


def _sqlite_head(connection: sqlite3.Connection) -> tuple[int, str]:
    last = connection.execute(HEAD_SQL).fetchone()
    if last is None:
        last = connection.execute(ANCHOR_SQL).fetchone()
    return (int(last[0]), str(last[1])) if last else (GENESIS_ANCHOR.seq, GENESIS_ANCHOR.hash)


@dataclass(frozen=True)
class BodyCheck:
    """What `SqlAuditStore.check_body` found: `plaintext` when the JSON could be read."""

    state: str  # "clear" (before 0011), "opened", "erased" (its key was), "unopened" (no keys)
    plaintext: bytes | None = None


class SqlAuditStore:
    def __init__(
        self, reader: AsyncEngine, writer: AsyncEngine, sealer: AuditSealer | None = None
    ) -> None:
        self.reader = reader
        self.writer = writer
        self._sqlite = dialects.is_sqlite(str(writer.url))
        # unflushed appends on SQLite, inline on the event loop (see `appender`)
        self.inline = InlineSqliteWriter.for_url(writer.url.render_as_string(False))
        # set with the repository's data keys (`SqlRepository.use_sealer`)
        self.sealer: AuditSealer = sealer or NoAuditSealer()
        self._legacy_through: int | None = None

    async def write(self, records: Sequence[AuditRecord], *, flush: bool = True) -> int:
        """Append in a transaction of their own (events of reads, denials, sign-ins); `flush`:
        wait for the disk (fsync) before returning, see `_append_sqlite`/`_append_postgres`."""
        if not records:
            return 0
        async with self.appender() as append:
            return await append(records, flush)

    @contextlib.asynccontextmanager
    async def appender(self) -> AsyncIterator[Appender]:
        """Appends for a group-commit flusher, each its own transaction.

        On SQLite, unflushed appends run inline (`InlineSqliteWriter`) whenever the write lock
        is free: no connection is checked out for them. Otherwise one writer connection is
        checked out on the first append that needs it and kept for the others: a pool
        check-out and check-in through SQLAlchemy's async layer cost about 60 µs of CPU (three
        greenlet switches), more than an audited read's own INSERT.

        A class key created meanwhile by another process fails our insert of the same
        generation: planned again once, with theirs."""
        async with contextlib.AsyncExitStack() as leases:
            leased: list[AsyncConnection] = []

            async def writer() -> AsyncConnection:
                if not leased:
                    leased.append(await leases.enter_async_context(self.writer.connect()))
                return leased[0]

            async def append(records: Sequence[AuditRecord], flush: bool) -> int:
                plan = await self.sealer.plan(records)
                try:
                    seq = await self._send(writer, plan, flush)
                except Exception:
                    if not plan.key_rows:
                        raise
                    plan = await self.sealer.plan(records)
                    seq = await self._send(writer, plan, flush)
                self.sealer.committed(plan)
                return seq

            yield append

    async def _send(
        self, writer: Callable[[], Awaitable[AsyncConnection]], plan: SealingPlan, flush: bool
    ) -> int:
        if self.inline is not None and not flush:
            seq = self.inline.run(functools.partial(chain_sqlite, plan))
            if seq is not None:
                return seq
        connection = await writer()
        if self._sqlite:  # the writer pool's one connection: this process's turn
            work = functools.partial(_append_sqlite, plan, flush)
            return await dialects.run_on_sqlite(connection, work)
        return await dialects.run_on_asyncpg(
            connection, functools.partial(_append_postgres, plan, flush)
        )

    async def close(self) -> None:
        if self.inline is not None:
            await self.inline.close()

    # -- reading bodies -------------------------------------------------------------------
    async def legacy_through(self) -> int:
        """The last seq written before 0011 sealed bodies: a clear body after it was not
        written by the server (recorded by the migration; it never changes)."""
        if self._legacy_through is None:
            query = select(keystore_state.c.value).where(keystore_state.c.name == LEGACY_STATE)
            async with self.reader.connect() as connection:
                value = (await connection.execute(query)).scalar()
            self._legacy_through = int(value or 0)
        return self._legacy_through

    async def check_body(self, row: ChainedRow, *, open_sealed: bool = True) -> BodyCheck:
        """Read a stored body, without telling anyone: `Tampered` when it fails its check."""
        record = row.record
        if record.key_id is None:
            if self.sealer.seals and row.seq > await self.legacy_through():
                raise Tampered("a body in clear where the server seals (written after 0011)")
            return BodyCheck("clear", record.body)
        if not open_sealed:
            return BodyCheck("unopened")
        try:
            plaintext = await self.sealer.unseal(record, row.seq)
        except KeysNotLoaded:
            return BodyCheck("unopened")
        return BodyCheck("erased") if plaintext is None else BodyCheck("opened", plaintext)

    async def event(self, row: ChainedRow) -> bytes:
        """The AuditEvent JSON of a stored record: opened, or its erased view (`audit.erased`:
        the clear columns only) when its key was erased. A body failing its integrity check is
        never served: `IntegrityFailure`, once the sealer's `on_tamper` recorded it."""
        try:
            check = await self.check_body(row)
        except Tampered as exc:
            raise await self.sealer.tampered(row.record, row.seq, str(exc)) from None
        if check.plaintext is None:
            if check.state == "unopened":
                raise KeysNotLoaded()
            return erased_view(row.record)
        try:
            return render(check.plaintext)
        except MalformedFacts as exc:  # opened, yet not what the builder wrote: rewritten
            raise await self.sealer.tampered(row.record, row.seq, str(exc)) from None

    async def events(
        self, since_us: int | None = None, until_us: int | None = None
    ) -> AsyncIterator[ChainedRow]:
        """`rows` with every body opened (`event`): what an export sends."""
        async for row in self.rows(0, since_us=since_us, until_us=until_us):
            record = dataclasses.replace(row.record, body=await self.event(row), key_id=None)
            yield ChainedRow(row.seq, record, row.hash)

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
        """(seq, AuditEvent JSON) of the matching records, newest first (opened: `event`)."""
        statement = _filtered(select(audit_event), query)
        statement = statement.order_by(audit_event.c.seq.desc()).limit(query.limit)
        async with self.reader.connect() as connection:
            rows = (await connection.execute(statement)).all()
        found = [ChainedRow(int(r.seq), _record(r), str(r.hash)) for r in rows]
        return [(row.seq, await self.event(row)) for row in found]

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
