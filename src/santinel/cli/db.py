"""`santinel db`: schema migrations."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from santinel.cli.common import DatabaseUrlOption, DataDirOption, make_settings
from santinel.services.container import Container, name_indexes_match
from santinel.storage.sql import migrations
from santinel.storage.sql.repository import SqlRepository

app = typer.Typer(help="Database schema.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def upgrade(data_dir: DataDirOption = None, database_url: DatabaseUrlOption = None) -> None:
    """Run the Alembic migrations up to the newest revision."""
    settings = make_settings(data_dir=data_dir, database_url=database_url)
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        repository = SqlRepository(settings.resolved_database_url())
        try:
            await migrations.upgrade(repository.writer)
        finally:
            await repository.close()

    asyncio.run(run())
    console.print(f"Database schema at {migrations.head_revision()}.")


@app.command()
def reindex(
    batch: Annotated[int, typer.Option(help="Resources per transaction.")] = 500,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Rebuild every search index row from the stored resources (after a definitions change,
    or to switch the database to this run's plaintext_name_indexes mode)."""
    settings = make_settings(data_dir=data_dir, database_url=database_url)

    async def run() -> int:
        container = await Container.open(settings, check_name_indexes=False)
        done = 0
        try:
            total = await container.repository.live_count()
            with Progress(console=console) as progress:
                task = progress.add_task("Reindexing", total=total)
                after = await container.repository.reindex_batch(None, batch)
                while after is not None:
                    done = min(done + batch, total)
                    progress.update(task, completed=done)
                    after = await container.repository.reindex_batch(after, batch)
                progress.update(task, completed=total)
            # the rows are now all in this process's mode: the database's, from now on
            await name_indexes_match(container.repository, adopt=True)
            return total
        finally:
            await container.close()

    total = asyncio.run(run())
    console.print(f"Reindexed {total} resources.")
