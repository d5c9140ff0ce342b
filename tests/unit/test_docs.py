"""The README documents every command and setting (a new one without docs fails here)."""

from __future__ import annotations

from pathlib import Path

import typer.main

from santinel.cli.main import app
from santinel.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _command_names(group: typer.Typer) -> list[str]:
    command = typer.main.get_command(group)
    names: list[str] = []

    def walk(cmd: object, prefix: str) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            full = f"{prefix} {name}".strip()
            if getattr(sub, "commands", None):
                walk(sub, full)
            else:
                names.append(full)

    walk(command, "")
    return names


def test_every_command_is_documented() -> None:
    names = _command_names(app)
    assert names
    missing = [n for n in names if f"`santinel {n}" not in README]
    assert missing == []


def test_every_setting_is_documented() -> None:
    missing = [
        name
        for name in Settings.model_fields
        if f"`{name}`" not in README or f"SANTINEL_{name.upper()}" not in README
    ]
    assert missing == []
