"""`santinel load` and `santinel demo` (filled in by the data-loading work)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from santinel.cli.common import DatabaseUrlOption, DataDirOption
from santinel.settings import Settings


def load(
    paths: Annotated[list[Path], typer.Argument(help="FHIR JSON files, Bundles or NDJSON files.")],
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Import FHIR resources from files."""
    raise typer.Exit(2)


def demo(
    patients: Annotated[int, typer.Option(help="How many synthetic patients.")] = 100,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Generate synthetic patients into the database."""
    raise typer.Exit(2)


async def load_demo_if_empty(settings: Settings) -> None:
    return None
