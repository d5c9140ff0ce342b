"""`santinel`: serve, db, load, demo."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from santinel.cli import clients, data, db, keys
from santinel.cli.common import DatabaseUrlOption, DataDirOption, make_settings
from santinel.logging import configure

app = typer.Typer(
    help="Santinel: a secure FHIR R4 server.", no_args_is_help=True, add_completion=False
)
app.add_typer(db.app, name="db")
app.add_typer(clients.app, name="clients")
app.add_typer(keys.app, name="keys")
app.command("load")(data.load)
app.command("demo")(data.demo)
console = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [env SANTINEL_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [env SANTINEL_PORT].")] = None,
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
    if demo_on_first_start:
        asyncio.run(data.load_demo_if_empty(settings))
    base = f"http://{settings.host}:{settings.port}/fhir"
    store = "PostgreSQL" if settings.database_url else f"SQLite in {settings.data_dir}"
    console.print(f"Santinel FHIR base: [bold]{base}[/bold]  ({store})")
    console.print(f"Try: curl -s {base}/Patient?_count=1")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        server_header=False,
        date_header=True,
    )


def main() -> None:
    app()
