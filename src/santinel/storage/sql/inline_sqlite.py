"""Short SQLite write transactions run inline, on the event loop's own thread.

Why: through SQLAlchemy and aiosqlite, a transaction costs a pool check-out (greenlet switches),
a hand-over to the connection's worker thread and back (queue, futex, GIL, loop wake-up) and, at
check-in, the pool's reset (a ROLLBACK: another hand-over). With the server on one core that
costs more CPU than the transaction itself. The audit trail's appends for reads, searches and
refusals are such transactions: a few INSERTs, no fsync (`audit_flush_reads = false`), never
waiting on anything.

So they run here, on a connection of their own, inline:

- it never waits for SQLite's write lock (`busy_timeout = 0`): when another connection holds it
  (a data change in this process's driver thread, another process), `run` returns None at once
  and the caller takes the regular, waiting path. Waiting here would block the event loop, which
  the lock holder may need in order to finish;
- its commits skip the fsync (`synchronous = NORMAL`, WAL mode): they survive a crash of the
  process at once, and a power loss from the next flushed commit or checkpoint on. Anything that
  must be flushed goes through the regular path;
- it never checkpoints on commit (`wal_autocheckpoint = 0`: a checkpoint fsyncs twice and copies
  pages, milliseconds the loop would stall); after every `CHECKPOINT_EVERY` commits a passive
  checkpoint runs in a worker thread instead, on a connection opened for it. Data changes keep
  checkpointing as before.

Used only from the event loop's thread; a file-backed database in WAL mode only (`for_url` gives
None otherwise, and `run` None when the database is not in WAL mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from santinel.logging import get_logger
from santinel.storage.sql.dialects import sqlite_file, sqlite_transaction

T = TypeVar("T")
log = get_logger("santinel.storage")
CHECKPOINT_EVERY = 128  # inline commits between passive checkpoints (a few WAL pages each)
PRAGMAS = (
    "PRAGMA busy_timeout=0",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA wal_autocheckpoint=0",
    "PRAGMA foreign_keys=ON",
)
BUSY = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


class InlineSqliteWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._usable = True  # False once the database turned out not to be in WAL mode
        self.commits = 0  # transactions committed here
        self._uncheckpointed = 0  # of them, since the last checkpoint started
        self._checkpoint: asyncio.Future[None] | None = None
        self._closed = False

    @classmethod
    def for_url(cls, url: str) -> InlineSqliteWriter | None:
        path = sqlite_file(url)
        return cls(path) if path is not None else None

    def run(self, work: Callable[[sqlite3.Connection], T]) -> T | None:
        """`work` in a transaction of its own, committed without the fsync; None, with nothing
        done, when the write lock is taken or this connection cannot be used (the caller then
        takes the regular path). Errors of `work` and of the commit roll back and propagate."""
        connection = self._open()
        if connection is None:
            return None
        try:
            result = sqlite_transaction(connection, work)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in BUSY:  # at BEGIN, mostly; rolled back whatever it was
                return None
            raise
        self.commits += 1
        self._uncheckpointed += 1
        if self._uncheckpointed >= CHECKPOINT_EVERY:
            self._start_checkpoint()
        return result

    def synchronous(self) -> int | None:
        """This connection's `PRAGMA synchronous` (1: NORMAL); None before its first use."""
        if self._connection is None:
            return None
        return int(self._connection.execute("PRAGMA synchronous").fetchone()[0])

    def _open(self) -> sqlite3.Connection | None:
        if self._connection is not None or not self._usable or self._closed:
            return self._connection
        if not self.path.exists():
            return None
        connection: sqlite3.Connection | None = None
        try:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # NORMAL is safe only in WAL mode (with a rollback journal, a power loss could
            # corrupt the database); the engines set WAL, a database copied in may not be
            (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
            self._usable = str(mode).lower() == "wal"
            for pragma in PRAGMAS if self._usable else ():
                connection.execute(pragma)
        except sqlite3.Error as exc:  # the regular path decides (and reports) this time
            if connection is not None:
                connection.close()
            log.warning("inline SQLite connection unavailable", error=type(exc).__name__)
            return None
        if not self._usable:
            connection.close()
            return None
        self._connection = connection
        return connection

    def _start_checkpoint(self) -> None:
        if self._checkpoint is not None and not self._checkpoint.done():
            return  # the next commit asks again
        self._uncheckpointed = 0
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside an event loop (a script): nothing to stall
            with contextlib.suppress(sqlite3.Error):  # the transaction did commit
                checkpoint(self.path)
            return
        self._checkpoint = loop.run_in_executor(None, checkpoint, self.path)
        self._checkpoint.add_done_callback(_log_failure)

    async def close(self) -> None:
        self._closed = True
        if self._checkpoint is not None:
            with contextlib.suppress(Exception):
                await self._checkpoint
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def checkpoint(path: Path) -> None:
    """Copy what the WAL holds back into the database, as far as no reader needs it; never
    waits for a lock (a busy database is checkpointed another time)."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA busy_timeout=0")
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        connection.close()


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("WAL checkpoint failed", error=type(future.exception()).__name__)
