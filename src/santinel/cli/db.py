"""`santinel db`: schema migrations."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from santinel.cli.common import DatabaseUrlOption, DataDirOption, make_settings
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
