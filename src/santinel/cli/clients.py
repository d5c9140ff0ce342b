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
from santinel.auth.tiers import MAX_PURPOSES, PURPOSE
from santinel.cli.common import DatabaseUrlOption, DataDirOption, make_settings
from santinel.cli.store import auth_store
from santinel.crypto.certificates import CertificateError, pem_thumbprint
from santinel.crypto.secrets import random_token, token_digest
from santinel.fhir.resource_types import is_resource_type
from santinel.services.oauth.jwks_fetch import JwksUnavailable, check_url
from santinel.services.ratelimit.rates import InvalidRate, parse_rate
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
    cert_file: Annotated[
        Path | None,
        typer.Option(
            help="The client's TLS certificate (PEM): it must connect with it (mutual TLS) and "
            "its tokens are bound to it (RFC 8705)."
        ),
    ] = None,
    require_dpop: Annotated[
        bool,
        typer.Option("--require-dpop", help="Its tokens must be DPoP-bound (RFC 9449)."),
    ] = False,
    rate_limit: Annotated[
        str | None,
        typer.Option(help="Its own rate limit, e.g. 600/minute (default: its tier's)."),
    ] = None,
    quota: Annotated[
        str | None, typer.Option(help="Its own quota, e.g. 100000/day (default: its tier's).")
    ] = None,
    allowed_type: Annotated[
        list[str] | None,
        typer.Option(help="Contract: a resource type it may use (repeat; default: any)."),
    ] = None,
    purpose: Annotated[
        list[str] | None,
        typer.Option(help="Contract: a purpose of use its tokens may ask for (repeat): TREAT…"),
    ] = None,
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
    thumbprint = _thumbprint(cert_file) if cert_file is not None else None
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
        cert_thumbprint=thumbprint,
        require_dpop=require_dpop,
        rate_limit=_rate(rate_limit, "--rate-limit"),
        quota=_rate(quota, "--quota"),
        allowed_types=_allowed_types(allowed_type),
        purposes=_purposes(purpose),
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
    if thumbprint:
        shown["cert_thumbprint"] = thumbprint
    if require_dpop:
        shown["require_dpop"] = True
    for key in ("rate_limit", "quota", "allowed_types", "purposes"):
        if getattr(record, key):
            shown[key] = getattr(record, key)
    if client_secret:
        shown["client_secret"] = client_secret
    if as_json:
        typer.echo(json.dumps(shown))
        return
    for key, value in shown.items():
        console.print(f"{key}: [bold]{value}[/bold]")
    if client_secret:
        console.print("Keep the secret now: it is not stored and cannot be shown again.")


def _rate(text: str | None, option: str) -> str | None:
    """A client's own rate limit or quota, checked and normalised (`600/minute`)."""
    try:
        rate = parse_rate(text)
    except InvalidRate as problem:
        raise typer.BadParameter(f"{option}: {problem}") from None
    return rate.text() if rate else None


def _allowed_types(types: list[str] | None) -> str | None:
    unknown = [t for t in types or () if not is_resource_type(t)]
    if unknown:
        raise typer.BadParameter(f"--allowed-type: {', '.join(unknown)} is not a resource type")
    return " ".join(sorted(set(types))) if types else None


def _purposes(codes: list[str] | None) -> str | None:
    if any(PURPOSE.fullmatch(c) is None for c in codes or ()) or len(codes or ()) > MAX_PURPOSES:
        raise typer.BadParameter(f"--purpose: up to {MAX_PURPOSES} codes such as TREAT")
    return " ".join(sorted(set(codes))) if codes else None


def _thumbprint(path: Path) -> str:
    """The certificate's `x5t#S256` (what bound tokens name); never its private key."""
    try:
        data = path.read_bytes()
    except OSError as problem:
        raise typer.BadParameter(f"cannot read --cert-file: {problem.strerror}") from None
    if b"PRIVATE KEY" in data:
        raise typer.BadParameter("--cert-file holds a PRIVATE key; give the certificate only")
    try:
        return pem_thumbprint(data)
    except CertificateError:
        raise typer.BadParameter("--cert-file must be a PEM X.509 certificate") from None


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

    table = Table("client_id", "name", "tier", "auth", "scope", "limits", "contract", "disabled")
    for c in asyncio.run(run()):
        limits = " ".join(x for x in (c.rate_limit, c.quota) if x) or "tier default"
        contract = " ".join(x for x in (c.allowed_types, c.purposes) if x)
        table.add_row(
            c.client_id,
            c.name,
            c.tier,
            c.auth_method,
            c.scope,
            limits,
            contract,
            "yes" if c.disabled else "",
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
