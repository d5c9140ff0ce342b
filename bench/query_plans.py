"""The query plans of what a request ran: statements captured by `bench/sql_capture_app.py`,
explained against the same store (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN (ANALYZE, BUFFERS)` on
PostgreSQL), and whether a plan reads a whole table.

Only SELECTs over resources and search indexes are explained (token checks, key reads and the
audit trail are not the search); the others a request ran are listed by their first words.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEARCH_TABLES = re.compile(r"\b(resource|search_[a-z]+)\b")
# A table read from end to end: SQLite says SCAN (a SEARCH uses an index to seek), PostgreSQL a
# sequential scan. SQLite also SCANs its own temporary results (subqueries, IN lists): not tables.
SQLITE_FULL_SCAN = re.compile(r"^SCAN (?!CONSTANT ROW)(?P<table>\w+)(?: AS \w+)?(?P<rest>.*)$")
PG_FULL_SCAN = re.compile(r"Seq Scan on (?P<table>\w+)")


@dataclass(frozen=True)
class Statement:
    dialect: str
    sql: str
    params: list[Any] | None

    @property
    def explained(self) -> bool:
        """A read of resources or index rows whose values can be replayed."""
        head = self.sql.lstrip().split(None, 1)[0].upper()
        return head == "SELECT" and bool(SEARCH_TABLES.search(self.sql)) and self.params is not None

    @property
    def summary(self) -> str:
        words = " ".join(self.sql.split()[:4])
        return words if len(words) < 80 else words[:77] + "…"


@dataclass
class Explained:
    statement: Statement
    plan: list[str]
    full_scans: list[str] = field(default_factory=list)  # tables read whole


def read_statements(log: Path, offset: int) -> tuple[list[Statement], int]:
    """The statements logged after `offset`, and the new offset."""
    with log.open("rb") as file:
        file.seek(offset)
        data = file.read()
    statements = [Statement(**json.loads(line)) for line in data.splitlines() if line.strip()]
    return statements, offset + len(data)


def explain_sqlite(database: Path, statements: list[Statement]) -> list[Explained]:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return [_explain_sqlite(connection, s) for s in statements if s.explained]
    finally:
        connection.close()


def _explain_sqlite(connection: sqlite3.Connection, statement: Statement) -> Explained:
    rows = connection.execute(
        "EXPLAIN QUERY PLAN " + statement.sql, statement.params or ()
    ).fetchall()
    depth: dict[int, int] = {0: -1}
    lines, scans = [], []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
        scan = SQLITE_FULL_SCAN.match(detail)
        if scan and SEARCH_TABLES.fullmatch(scan["table"]):
            scans.append(scan["table"])
    return Explained(statement, lines, scans)


def explain_postgres(url: str, statements: list[Statement]) -> list[Explained]:
    return asyncio.run(_explain_postgres(url, [s for s in statements if s.explained]))


async def _explain_postgres(url: str, statements: list[Statement]) -> list[Explained]:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=10)
    found = []
    try:
        for statement in statements:
            # ANALYZE runs the statement: a read, inside a transaction rolled back anyway
            transaction = connection.transaction()
            await transaction.start()
            try:
                rows = await connection.fetch(
                    "EXPLAIN (ANALYZE, BUFFERS) " + statement.sql, *(statement.params or ())
                )
            finally:
                await transaction.rollback()
            lines = [row[0] for row in rows]
            scans = [m["table"] for line in lines for m in PG_FULL_SCAN.finditer(line)]
            found.append(Explained(statement, lines, scans))
    finally:
        await connection.close()
    return found


def literal_sql(statement: Statement) -> str:
    """The statement with its values written in (for reading only: quoting is naive)."""
    sql = " ".join(statement.sql.split())
    values = statement.params or []

    def show(value: Any) -> str:
        return repr(value) if isinstance(value, str) else str(value)

    if statement.dialect == "postgresql":
        return re.sub(r"\$(\d+)", lambda m: show(values[int(m[1]) - 1]), sql)
    parts = sql.split("?")
    if len(parts) != len(values) + 1:
        return sql
    return "".join(
        p + (show(v) if i < len(values) else "")
        for i, (p, v) in enumerate(zip(parts, [*values, None], strict=True))
    )


def as_dict(item: Explained) -> dict[str, Any]:
    return {
        "sql": literal_sql(item.statement),
        "plan": item.plan,
        "full_scans": item.full_scans,
    }
