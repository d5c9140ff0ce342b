"""`santinel users` and `santinel launch`: people who sign in, and EHR launch contexts."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import IntegrityError

from santinel.cli.common import DatabaseUrlOption, DataDirOption, make_settings
from santinel.cli.store import grant_store
from santinel.services.oauth.users import UserError, create_launch, new_user, totp_uri
from santinel.storage.auth_records import UserRecord

app = typer.Typer(help="Users who sign in on the authorization pages.", no_args_is_help=True)
console = Console()


@app.command()
def add(
    username: Annotated[str, typer.Option(help="The name the user signs in with.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    fhir_user: Annotated[
        str | None,
        typer.Option(help="The user's FHIR resource: Patient/ID or Practitioner/ID."),
    ] = None,
    totp: Annotated[
        bool, typer.Option("--totp", help="Require a TOTP one-time code (second factor).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Register a user (the password is hashed with argon2id; never pass it as an argument)."""
    if not password_stdin:
        raise typer.BadParameter("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        record = new_user(username, password, fhir_user, totp=totp)
    except UserError as problem:
        raise typer.BadParameter(str(problem)) from None
    settings = make_settings(data_dir=data_dir, database_url=database_url)

    async def run() -> None:
        async with grant_store(settings) as store:
            await store.add_user(record)

    try:
        asyncio.run(run())
    except IntegrityError:
        console.print(f"A user named {username} already exists.")
        raise typer.Exit(1) from None
    shown = {"user_id": record.user_id, "username": username, "fhir_user": fhir_user}
    uri = totp_uri(record)
    if uri:
        shown["totp_uri"] = uri
    if as_json:
        typer.echo(json.dumps(shown))
        return
    for key, value in shown.items():
        console.print(f"{key}: [bold]{value}[/bold]", soft_wrap=True)
    if uri:
        console.print("Add the totp_uri to an authenticator app now: it is not shown again.")


@app.command("list")
def list_users(data_dir: DataDirOption = None, database_url: DatabaseUrlOption = None) -> None:
    """List users (never their password hash)."""
    settings = make_settings(data_dir=data_dir, database_url=database_url)

    async def run() -> list[UserRecord]:
        async with grant_store(settings) as store:
            return await store.users()

    table = Table("user_id", "username", "fhir_user", "2FA", "disabled")
    for u in asyncio.run(run()):
        table.add_row(
            u.user_id,
            u.username,
            u.fhir_user or "",
            "totp" if u.totp_secret else "",
            "yes" if u.disabled else "",
        )
    console.print(table)


@app.command()
def disable(
    username: str, data_dir: DataDirOption = None, database_url: DatabaseUrlOption = None
) -> None:
    """Disable a user: they can no longer sign in."""
    settings = make_settings(data_dir=data_dir, database_url=database_url)

    async def run() -> bool:
        async with grant_store(settings) as store:
            return await store.set_user_disabled(username, True)

    if not asyncio.run(run()):
        console.print(f"No user {username}.")
        raise typer.Exit(1)
    console.print(f"User {username} disabled.")


def launch(
    patient: Annotated[str | None, typer.Option(help="The patient in context (id).")] = None,
    encounter: Annotated[str | None, typer.Option(help="The encounter in context (id).")] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Create an EHR launch context; prints the opaque `launch` value (valid one hour) to pass
    to the app's launch URL with `iss`."""
    if patient is None and encounter is None:
        raise typer.BadParameter("give --patient and/or --encounter")
    settings = make_settings(data_dir=data_dir, database_url=database_url)

    async def run() -> str:
        async with grant_store(settings) as store:
            return await create_launch(store, patient, encounter)

    typer.echo(asyncio.run(run()))
