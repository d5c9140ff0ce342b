"""BENCH ONLY: `santinel serve` writing every SQL statement it sends through SQLAlchemy to a file.

`bench.search_scale` starts it on a store after measuring, sends one request of each query and
reads back the statements that request ran, to print their query plans (`EXPLAIN QUERY PLAN` on
SQLite, `EXPLAIN (ANALYZE, BUFFERS)` on PostgreSQL) with the very SQL and values the server used,
not a reconstruction. It is the very app and command (`santinel.cli.main`: same options, routes,
middleware, policy and database); the only addition is a `before_cursor_execute` listener on
every SQLAlchemy engine of this process. Statements sent straight to the driver (the audit
trail's one-hop append, SQLite point reads) are not seen: they are not searches.

    BENCH_SQL_LOG=statements.ndjson python -m bench.sql_capture_app serve --port 8099 …

Each line is `{"dialect": "sqlite"|"postgresql", "sql": …, "params": [...]}`; executemany batches
(index rows, history) are left out. Nothing in `src/` logs statements with their values: this
module exists only in `bench/`, and its log holds data (identifiers of the demo patients).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

LOG_ENV = "BENCH_SQL_LOG"
PLAIN = (str, int, float, bool, type(None))


def jsonable(parameters: Any) -> list[Any] | None:
    """The statement's positional values, or None when one cannot be replayed from JSON."""
    values = list(parameters.values()) if isinstance(parameters, dict) else list(parameters or ())
    return values if all(isinstance(v, PLAIN) for v in values) else None


def install(sink: IO[str]) -> None:
    """Log every statement of every engine of this process to `sink`, one JSON line each."""

    @event.listens_for(Engine, "before_cursor_execute")
    def log(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if executemany:
            return
        line = {"dialect": conn.dialect.name, "sql": statement, "params": jsonable(parameters)}
        sink.write(json.dumps(line) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    """`santinel ARGS` (e.g. `serve --port 8099 --data-dir DIR --http`) logging its SQL."""
    from santinel.cli.main import app as cli

    path = os.environ.get(LOG_ENV)
    if not path:
        raise RuntimeError(f"{LOG_ENV} must name the file the statements are written to")
    with Path(path).open("a", buffering=1) as sink:  # line-buffered: read while it runs
        install(sink)
        cli(args=list(argv if argv is not None else sys.argv[1:]), prog_name="santinel")


if __name__ == "__main__":
    main()
