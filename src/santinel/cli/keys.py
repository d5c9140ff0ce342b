"""`santinel keys`: the server's token-signing keys, and the keys of encryption at rest."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from santinel.cli.common import DatabaseUrlOption, DataDirOption, make_settings
from santinel.cli.store import auth_store
from santinel.crypto.key_providers import KeyProviderError
from santinel.services import key_admin
from santinel.services.oauth.keys import KEY_REFRESH_SECONDS
from santinel.services.oauth.keys import rotate as rotate_key

app = typer.Typer(help="Signing keys; encryption keys (KEK, data keys).", no_args_is_help=True)
console = Console()


@app.command()
def rotate(
    alg: Annotated[
        str, typer.Option(help="ES256 or ES384 (access tokens), RS256 (OpenID id_tokens).")
    ] = "ES256",
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Add a signing key; older keys stay in the JWKS until their last token has expired."""
    if alg not in ("ES256", "ES384", "RS256"):
        raise typer.BadParameter("--alg must be ES256, ES384 or RS256")
    settings = make_settings(data_dir=data_dir, database_url=database_url)

    async def run() -> str:
        async with auth_store(settings) as store:
            return await rotate_key(store, alg)

    kid = asyncio.run(run())
    console.print(
        f"New signing key {kid}. Running servers sign with it within "
        f"{KEY_REFRESH_SECONDS:g} seconds."
    )


@app.command("rotate-kek")
def rotate_kek(
    new_kek_stdin: Annotated[
        bool,
        typer.Option(
            "--new-kek-stdin", help="Read the new KEK (base64) from standard input (env provider)."
        ),
    ] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Re-wrap every data key with a new key-encryption key, in one transaction (the data is
    not touched): a new key file, the given key (env), or a new Vault transit key version."""
    settings = make_settings(data_dir=data_dir, database_url=database_url)
    new_kek = sys.stdin.readline().strip() if new_kek_stdin else None
    try:
        done = asyncio.run(key_admin.rotate_kek(settings, new_kek))
    except KeyProviderError as problem:
        console.print(f"[red]{problem}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{done.keys} data keys re-wrapped with {done.kek_id}.", markup=False)
    console.print(done.advice, markup=False, soft_wrap=True)


@app.command("rotate-dek")
def rotate_dek(
    batch: Annotated[int, typer.Option(help="Versions re-encrypted per transaction.")] = 500,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Give every owner a new data key and re-encrypt every stored version with it, batch by
    batch with a progress bar, while servers keep serving; also encrypts versions written
    before encryption at rest. Audit records keep their keys (the hash chain covers their
    sealed bytes): a retired key sealing some stays until retention prunes them."""
    settings = make_settings(data_dir=data_dir, database_url=database_url)
    with Progress(console=Console(stderr=True)) as bar:
        task = bar.add_task("Re-encrypting", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        versions, deleted = asyncio.run(key_admin.rotate_dek(settings, batch, progress))
    console.print(
        f"{versions} versions re-encrypted; {deleted} retired data keys deleted (those still "
        "sealing audit records are kept until retention prunes them)."
    )


@app.command("rotate-blind-index")
def rotate_blind_index(
    batch: Annotated[int, typer.Option(help="Resources re-indexed per transaction.")] = 500,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Replace the blind-index key (the HMAC key of the digests identifying values are searched
    by): servers write index rows under the new key at once and search under both; every live
    resource's rows are rebuilt under it, batch by batch with a progress bar, while servers keep
    serving; then the old key is deleted. Run it again to finish an interrupted rotation."""
    settings = make_settings(data_dir=data_dir, database_url=database_url)
    with Progress(console=Console(stderr=True)) as bar:
        task = bar.add_task("Re-indexing", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        done = asyncio.run(key_admin.rotate_blind_index(settings, batch, progress))
    resumed = " (an interrupted rotation, resumed)" if done.resumed else ""
    console.print(
        f"Blind-index key replaced{resumed}: {done.resources} resources re-indexed, "
        f"retired keys deleted: {done.keys_deleted}."
    )
