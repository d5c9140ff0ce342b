"""`santinel clients`: register and manage OAuth clients (SMART apps, backend services)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from santinel.auth.scopes import parse_scopes
from santinel.cli.common import DatabaseUrlOption, DataDirOption, make_settings
from santinel.cli.store import auth_store
from santinel.crypto.secrets import random_token, token_digest
from santinel.services.oauth.jwks_fetch import JwksUnavailable, check_url
from santinel.storage.auth_records import ClientRecord

app = typer.Typer(help="OAuth clients.", no_args_is_help=True)
console = Console()
TIERS = ("internal", "partner", "public")


@app.command()
def add(
    name: Annotated[str, typer.Option(help="A name people recognise.")],
    scope: Annotated[str, typer.Option(help='Most the client may be granted, e.g. "system/*.rs".')],
    tier: Annotated[str, typer.Option(help="internal, partner or public.")] = "internal",
    jwks_file: Annotated[
        Path | None, typer.Option(help="JWK Set of the client's public keys.")
    ] = None,
    jwks_url: Annotated[str | None, typer.Option(help="URL of the client's JWK Set.")] = None,
    secret: Annotated[bool, typer.Option("--secret", help="Give the client a secret.")] = False,
    public: Annotated[
        bool, typer.Option("--public", help="A public client (browser, mobile).")
    ] = False,
    redirect_uri: Annotated[list[str] | None, typer.Option(help="Allowed redirect URI.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Register a client; prints its client_id (and its secret, once: only a hash is kept)."""
    if tier not in TIERS:
        raise typer.BadParameter(f"--tier must be one of {', '.join(TIERS)}")
    if sum((jwks_file is not None or jwks_url is not None, secret, public)) != 1:
        raise typer.BadParameter("give exactly one of --jwks-file/--jwks-url, --secret, --public")
    if not parse_scopes(scope).resources:
        raise typer.BadParameter(f"no valid SMART scope in {scope!r}")
    jwks = jwks_file.read_text() if jwks_file else None
    if jwks is not None:
        _check_jwks(jwks)
    if jwks_url is not None:
        try:
            check_url(jwks_url)
        except JwksUnavailable:
            raise typer.BadParameter(
                "--jwks-url must be https (plain http only for 127.0.0.1, localhost or ::1)"
            ) from None
    client_secret = random_token() if secret else None
    record = ClientRecord(
        client_id=uuid.uuid4().hex,
        name=name,
        tier=tier,
        scope=parse_scopes(scope).text,
        auth_method="private_key_jwt"
        if jwks or jwks_url
        else "client_secret_basic"
        if secret
        else "none",
        secret_digest=token_digest(client_secret) if client_secret else None,
        jwks=jwks,
        jwks_url=jwks_url,
        redirect_uris=tuple(redirect_uri or ()),
        created_us=int(time.time() * 1_000_000),
    )
    settings = make_settings(data_dir=data_dir, database_url=database_url)

    async def run() -> None:
        async with auth_store(settings) as store:
            await store.add_client(record)

    asyncio.run(run())
    shown: dict[str, Any] = {
        "client_id": record.client_id,
        "name": name,
        "tier": tier,
        "scope": record.scope,
        "auth_method": record.auth_method,
    }
    if client_secret:
        shown["client_secret"] = client_secret
    if as_json:
        typer.echo(json.dumps(shown))
        return
    for key, value in shown.items():
        console.print(f"{key}: [bold]{value}[/bold]")
    if client_secret:
        console.print("Keep the secret now: it is not stored and cannot be shown again.")


def _check_jwks(text: str) -> None:
    try:
        keys = json.loads(text).get("keys")
    except (ValueError, AttributeError):
        keys = None
    if not isinstance(keys, list) or not keys:
        raise typer.BadParameter("the JWKS file must be a JSON JWK Set with at least one key")
    if any("d" in key for key in keys if isinstance(key, dict)):
        raise typer.BadParameter("the JWKS file holds a PRIVATE key; register the public keys only")


@app.command("list")
def list_clients(data_dir: DataDirOption = None, database_url: DatabaseUrlOption = None) -> None:
    """List registered clients."""
    settings = make_settings(data_dir=data_dir, database_url=database_url)

    async def run() -> list[ClientRecord]:
        async with auth_store(settings) as store:
            return await store.clients()

    table = Table("client_id", "name", "tier", "auth", "scope", "disabled")
    for c in asyncio.run(run()):
        table.add_row(
            c.client_id, c.name, c.tier, c.auth_method, c.scope, "yes" if c.disabled else ""
        )
    console.print(table)


@app.command()
def show(
    client_id: str, data_dir: DataDirOption = None, database_url: DatabaseUrlOption = None
) -> None:
    """Show one client (never its secret)."""
    settings = make_settings(data_dir=data_dir, database_url=database_url)

    async def run() -> ClientRecord | None:
        async with auth_store(settings) as store:
            return await store.client(client_id)

    record = asyncio.run(run())
    if record is None:
        console.print(f"No client {client_id}.")
        raise typer.Exit(1)
    shown = {k: v for k, v in record.__dict__.items() if k != "secret_digest"}
    typer.echo(json.dumps({**shown, "redirect_uris": list(record.redirect_uris)}, indent=2))


@app.command()
def disable(
    client_id: str, data_dir: DataDirOption = None, database_url: DatabaseUrlOption = None
) -> None:
    """Disable a client: it can no longer get tokens."""
    settings = make_settings(data_dir=data_dir, database_url=database_url)

    async def run() -> bool:
        async with auth_store(settings) as store:
            return await store.set_client_disabled(client_id, True)

    if not asyncio.run(run()):
        console.print(f"No client {client_id}.")
        raise typer.Exit(1)
    console.print(f"Client {client_id} disabled.")
