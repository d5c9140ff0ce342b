"""Printing tables and writing results (JSON + markdown) to `bench/results/` (git-ignored)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
Cell = str | int | float | None
console = Console(width=shutil.get_terminal_size((200, 40)).columns)


def fmt(value: Cell, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
    table = Table(title=title, title_justify="left")
    for index, header in enumerate(headers):
        table.add_column(header, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*(fmt(cell) for cell in row))
    console.print(table)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    def escape(cell: Cell) -> str:
        return fmt(cell).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def environment() -> dict[str, Any]:
    """What the figures depend on: machine, load at start, versions, commit."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
    except OSError:
        commit, dirty = "", ""
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": (commit + ("+changes" if dirty else "")) or None,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def result_data(
    benchmark: str, settings: dict[str, Any], results: list[dict[str, Any]], **more: Any
) -> dict[str, Any]:
    """What every results file starts with (the figures depend on the machine and its load at
    the time), then what is particular to the benchmark."""
    return {
        "benchmark": benchmark,
        "environment": environment(),
        "settings": settings,
        "results": results,
        **more,
    }


def publish(
    name: str,
    data: dict[str, Any],
    markdown: str,
    tables: Sequence[tuple[str, Sequence[str], Sequence[Sequence[Cell]]]],
    verdict: str | None = None,
) -> None:
    """Print each (title, headers, rows) table and the verdict, then write the results."""
    for title, headers, rows in tables:
        print_table(title, headers, rows)
    if verdict:
        console.print(verdict)
    write_results(name, data, markdown)


def write_results(name: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path, md_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(markdown)
    console.print(
        f"results: {json_path.relative_to(RESULTS.parent.parent)}, "
        f"{md_path.relative_to(RESULTS.parent.parent)}"
    )
    return json_path, md_path
