"""`santinel keys`: the server's token-signing keys."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from santinel.cli.common import DatabaseUrlOption, DataDirOption, make_settings
from santinel.cli.store import auth_store
from santinel.services.oauth.keys import KEY_REFRESH_SECONDS
from santinel.services.oauth.keys import rotate as rotate_key

app = typer.Typer(help="Signing keys.", no_args_is_help=True)
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
