"""`santinel`: serve, db, load, demo, clients, users, launch, keys."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from santinel.cli import clients, data, db, keys, users
from santinel.cli.common import DatabaseUrlOption, DataDirOption, make_settings
from santinel.cli.demo_client import (
    ensure_demo_client,
    ensure_demo_user,
    instructions,
    user_instructions,
)
from santinel.logging import configure
from santinel.services.container import Container, SchemaNotCurrent
from santinel.settings import Settings

app = typer.Typer(
    help="Santinel: a secure FHIR R4 server.", no_args_is_help=True, add_completion=False
)
app.add_typer(db.app, name="db")
app.add_typer(clients.app, name="clients")
app.add_typer(keys.app, name="keys")
app.add_typer(users.app, name="users")
app.command("launch")(users.launch)
app.command("load")(data.load)
app.command("demo")(data.demo)
console = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (env SANTINEL_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (env SANTINEL_PORT).")] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    demo_on_first_start: Annotated[
        bool,
        typer.Option(help="Load synthetic demo patients when the database is empty."),
    ] = False,
) -> None:
    """Start the FHIR server (HTTP); the FHIR base is http://HOST:PORT/fhir."""
    import uvicorn

    from santinel.web.app import create_app

    settings = make_settings(host=host, port=port, data_dir=data_dir, database_url=database_url)
    configure(settings.log_level)
    try:
        asyncio.run(_prepare(settings))
    except SchemaNotCurrent as problem:
        console.print(f"[red]{problem}[/red]")
        raise typer.Exit(1) from None
    demo_client = demo_user = None
    base = f"http://{settings.host}:{settings.port}/fhir"
    if demo_on_first_start:
        asyncio.run(data.load_demo_if_empty(settings))
        if not settings.database_url:
            demo_client = asyncio.run(ensure_demo_client(settings))
            demo_user = asyncio.run(ensure_demo_user(settings, base))
    store = "PostgreSQL" if settings.database_url else f"SQLite in {settings.data_dir}"
    console.print(f"Santinel FHIR base: [bold]{base}[/bold]  ({store})", soft_wrap=True)
    if demo_client is not None:
        host_url = f"http://{settings.host}:{settings.port}"
        lines = instructions(host_url, *demo_client)
        if demo_user is not None:
            lines += user_instructions(host_url, demo_user)
        for line in lines:
            console.print(line, soft_wrap=True, markup=False, highlight=False)
    else:
        console.print(
            "Register a client with `santinel clients add` to get tokens.", soft_wrap=True
        )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        server_header=False,
        date_header=True,
    )


async def _prepare(settings: Settings) -> None:
    """Migrate an empty database and refuse an outdated one before listening (one clear line
    instead of a failure inside the server's startup)."""
    container = await Container.open(settings)
    await container.close()


def main() -> None:
    app()
