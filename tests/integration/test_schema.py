"""`santinel db upgrade` creates the schema; a server refuses a database at another revision.

One story per backend, run once (starting `santinel serve` costs seconds) and checked by the
tests below: upgrade an empty database twice, serve it (ready), move its revision under the
running server (not ready), then try to start a server on it (refused).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from santinel.cli.main import app
from santinel.storage.sql import migrations
from tests.integration.processes import ServerProcess
from tests.services import postgres_database

UNKNOWN_REVISION = "deadbeef0000"  # e.g. written by a newer Santinel


@dataclass
class Store:
    flags: list[str]
    set_revision: Callable[[str], None]
    tables: Callable[[], set[str]]


@dataclass
class Story:
    upgrades: list[tuple[int, str]] = field(default_factory=list)  # (exit code, output)
    tables: set[str] = field(default_factory=set)
    ready: list[httpx.Response] = field(default_factory=list)  # before and after the move
    refusals: dict[str, tuple[int, str]] = field(default_factory=dict)  # revision → code, stderr


def sqlite_store(folder: Path) -> Store:
    path = folder / "santinel.sqlite3"

    def set_revision(revision: str) -> None:
        with sqlite3.connect(path) as db:
            db.execute("UPDATE alembic_version SET version_num = ?", (revision,))

    def tables() -> set[str]:
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {name for (name,) in rows}

    return Store(["--data-dir", str(folder)], set_revision, tables)


def postgres_store(url: str) -> Store:
    async def run(sql: str, *args: str) -> list[str]:
        import asyncpg

        connection = await asyncpg.connect(url, timeout=10)
        try:
            return [row[0] for row in await connection.fetch(sql, *args)]
        finally:
            await connection.close()

    def set_revision(revision: str) -> None:
        anyio.run(run, "UPDATE alembic_version SET version_num = $1 RETURNING 1", revision)

    def tables() -> set[str]:
        return set(anyio.run(run, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))

    return Store(["--database-url", url], set_revision, tables)


def revisions_to_refuse() -> list[str]:
    """An unknown revision and, once the history has one, the revision before the head."""
    scripts = ScriptDirectory.from_config(migrations.alembic_config())
    head = scripts.get_revision(scripts.get_current_head())
    older = head.down_revision if head is not None else None
    return [UNKNOWN_REVISION, *([older] if isinstance(older, str) else [])]


def db_upgrade(store: Store) -> tuple[int, str]:
    """`santinel db upgrade` (the Typer app, in process), with no SANTINEL_* from the outside."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SANTINEL_")}
    result = CliRunner().invoke(app, ["db", "upgrade", *store.flags], env=env)
    return result.exit_code, result.output


def tell(store: Store, folder: Path) -> Story:
    story = Story()
    story.upgrades.append(db_upgrade(store))
    story.tables = store.tables()
    story.upgrades.append(db_upgrade(store))
    with ServerProcess(store.flags, folder / "serve.log") as server:
        story.ready.append(httpx.get(f"{server.url}/readyz", timeout=10))
        store.set_revision(UNKNOWN_REVISION)  # another version migrated it meanwhile
        story.ready.append(httpx.get(f"{server.url}/readyz", timeout=10))
    for revision in revisions_to_refuse():
        store.set_revision(revision)
        refused = ServerProcess(store.flags, folder / f"refused-{revision}.log")
        try:
            code = refused.start().wait(timeout=60)
        finally:
            refused.stop()
        story.refusals[revision] = (code, refused.stderr())
    return story


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def story(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Story]:
    folder = tmp_path_factory.mktemp(f"schema-{request.param}")
    if request.param == "sqlite":
        yield tell(sqlite_store(folder / "data"), folder)
        return
    with postgres_database() as url:
        yield tell(postgres_store(url), folder)


def test_db_upgrade_creates_the_schema_on_an_empty_database(story: Story) -> None:
    code, output = story.upgrades[0]
    assert code == 0, output
    assert f"Database schema at {migrations.head_revision()}" in output
    assert {"alembic_version", "resource", "resource_history"} <= story.tables


def test_db_upgrade_on_an_upgraded_database_succeeds_and_changes_nothing(story: Story) -> None:
    code, output = story.upgrades[1]
    assert code == 0, output
    assert f"Database schema at {migrations.head_revision()}" in output


def test_readyz_is_200_after_the_upgrade_and_503_once_the_revision_moves(story: Story) -> None:
    before, after = story.ready
    assert before.status_code == 200
    assert before.json()["status"] == "ok"
    assert after.status_code == 503
    assert after.json()["status"] == "unavailable"


@pytest.mark.parametrize("revision", revisions_to_refuse())
def test_the_server_refuses_to_start_on_a_database_at_another_revision(
    story: Story, revision: str
) -> None:
    code, stderr = story.refusals[revision]
    assert code != 0, stderr
    assert "santinel db upgrade" in stderr
    assert revision in stderr
    assert str(migrations.head_revision()) in stderr
    assert "Uvicorn running" not in stderr


def test_the_refusal_to_start_is_a_message_without_a_traceback(story: Story) -> None:
    _, stderr = story.refusals[UNKNOWN_REVISION]
    assert "Traceback" not in stderr
    assert ".py" not in stderr
