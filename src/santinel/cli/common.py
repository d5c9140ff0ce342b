"""What every command shares: locating the store from flags or the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from santinel.settings import Settings

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Directory of the embedded SQLite database (env SANTINEL_DATA_DIR)."
    ),
]
DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="PostgreSQL URL, e.g. postgresql://user@host/db (env SANTINEL_DATABASE_URL).",
    ),
]


def make_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with explicitly given command-line values on top."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
