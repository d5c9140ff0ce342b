"""`santinel`: serve, db, load, demo, clients, users, launch, keys."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from santinel.cli import audit, clients, data, db, keys, patients, tls, users
from santinel.cli.common import DatabaseUrlOption, DataDirOption, make_settings
from santinel.cli.demo_client import (
    ensure_demo_client,
    ensure_demo_user,
    instructions,
    user_instructions,
)
from santinel.crypto.key_providers import KeyProviderError
from santinel.logging import configure
from santinel.services.container import Container, SchemaNotCurrent
from santinel.services.ratelimit.limiter import InvalidTrafficSettings
from santinel.settings import Settings
from santinel.storage.sql.keystore import WrongKeyEncryptionKey

app = typer.Typer(
    help="Santinel: a secure FHIR R4 server.", no_args_is_help=True, add_completion=False
)
app.add_typer(db.app, name="db")
app.add_typer(clients.app, name="clients")
app.add_typer(keys.app, name="keys")
app.add_typer(patients.app, name="patients")
app.add_typer(users.app, name="users")
app.add_typer(audit.app, name="audit")
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
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="PEM certificate chain for HTTPS (env SANTINEL_TLS_CERT)."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="PEM private key of --tls-cert (env SANTINEL_TLS_KEY).")
    ] = None,
    client_ca: Annotated[
        Path | None,
        typer.Option(
            help="CA of client certificates: enables mutual TLS (env SANTINEL_CLIENT_CA)."
        ),
    ] = None,
    plain_http: Annotated[
        bool | None,
        typer.Option(
            "--http",
            help="Serve plain HTTP; loopback addresses only (env SANTINEL_PLAIN_HTTP).",
            show_default=False,
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="Redis shared by every node for rate limits and sign-in failure counters "
            "(env SANTINEL_REDIS_URL); default: this process's memory."
        ),
    ] = None,
) -> None:
    """Start the FHIR server, over HTTPS (a development certificate unless --tls-cert is
    given); the FHIR base is https://HOST:PORT/fhir."""
    import uvicorn

    from santinel.web.app import create_app
    from santinel.web.http_protocol import server_options

    settings = make_settings(
        host=host,
        port=port,
        data_dir=data_dir,
        database_url=database_url,
        tls_cert=tls_cert,
        tls_key=tls_key,
        client_ca=client_ca,
        plain_http=plain_http,
        redis_url=redis_url,
    )
    configure(settings.log_level)
    try:
        transport = tls.prepare(settings)
    except tls.TransportRefused as problem:
        console.print(f"[red]{problem}[/red]", soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        asyncio.run(_prepare(settings))
    except (
        SchemaNotCurrent,
        InvalidTrafficSettings,
        WrongKeyEncryptionKey,
        KeyProviderError,
    ) as problem:
        console.print(f"[red]{problem}[/red]")
        raise typer.Exit(1) from None
    demo_client = demo_user = None
    host_url = f"{transport.scheme}://{tls.url_host(settings.host)}:{settings.port}"
    base = f"{host_url}/fhir"
    if demo_on_first_start:
        asyncio.run(data.load_demo_if_empty(settings))
        if not settings.database_url:
            demo_client = asyncio.run(ensure_demo_client(settings))
            demo_user = asyncio.run(ensure_demo_user(settings, base))
    store = "PostgreSQL" if settings.database_url else f"SQLite in {settings.data_dir}"
    console.print(f"Santinel FHIR base: [bold]{base}[/bold]  ({store})", soft_wrap=True)
    if transport.ca_file is not None:
        console.print(
            f"HTTPS with a development certificate: clients trust the CA {transport.ca_file} "
            f"(curl --cacert {shlex.quote(str(transport.ca_file))} …)",
            soft_wrap=True,
            markup=False,
        )
    if demo_client is not None:
        lines = instructions(host_url, *demo_client, ca_file=transport.ca_file)
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
        # TLS, plus the limits on header size, slow clients and keep-alive
        **server_options(settings, transport.uvicorn_options()),
    )


async def _prepare(settings: Settings) -> None:
    """Migrate an empty database and refuse an outdated one before listening (one clear line
    instead of a failure inside the server's startup)."""
    container = await Container.open(settings)
    await container.close()


def main() -> None:
    app()
