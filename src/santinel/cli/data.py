"""`santinel load` and `santinel demo`: filling a database, with progress and a summary.

Both go through the service layer (`services.bulk`), so whatever enters the database this way was
validated exactly like a REST request. Output goes to stderr (progress, summary, rejections);
`demo --output -` writes NDJSON to stdout. Nothing here is logged: rejections may quote the data.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated, Any, NoReturn, TypeVar

import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import DBAPIError

from santinel import demo as demo_data
from santinel.cli import sources
from santinel.cli.common import DatabaseUrlOption, DataDirOption, make_settings
from santinel.errors import FhirError
from santinel.services import bulk
from santinel.services.container import Container, SchemaNotCurrent
from santinel.settings import Settings
from santinel.storage.base import FhirRepository

T = TypeVar("T")
console = Console(stderr=True)
DEMO_SEED = 1  # the seed `serve --demo-on-first-start` uses, and `demo`'s default
MAX_ISSUES_SHOWN = 10


def load(
    paths: Annotated[
        list[Path],
        typer.Argument(
            exists=True, help="FHIR JSON files (a resource or a Bundle), NDJSON files, folders."
        ),
    ],
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Import FHIR resources: with an id they are updated (PUT), without one created (POST).

    Exits with status 1 when any resource was rejected; each rejection is printed with its file,
    line or Bundle entry and the server's diagnostics.
    """
    settings = make_settings(data_dir=data_dir, database_url=database_url)
    files = sources.discover(paths)
    if not files:
        console.print("[red]No .json or .ndjson file found.[/red]")
        raise typer.Exit(1)
    started = time.perf_counter()
    counts = _run(_load_files(settings, files))
    _print_load_summary(counts, len(files), time.perf_counter() - started)
    raise typer.Exit(1 if counts["rejected"] else 0)


def demo(
    patients: Annotated[int, typer.Option(min=1, help="How many synthetic patients.")] = 100,
    seed: Annotated[
        int, typer.Option(min=0, help="Random seed: the same seed gives the same data.")
    ] = DEMO_SEED,
    output: Annotated[
        Path | None,
        typer.Option(help="Write NDJSON to this file ('-' for stdout) instead of the database."),
    ] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Generate synthetic French patients (encounters, vital signs, labs, conditions,
    prescriptions), deterministic for a seed, into the database or an NDJSON file."""
    started = time.perf_counter()
    if output is not None:
        if data_dir is not None or database_url is not None:
            raise typer.BadParameter("--output writes a file; it takes no database option.")
        types = _write_ndjson(output, patients, seed)
        _print_demo_summary(types, None, time.perf_counter() - started)
        return
    settings = make_settings(data_dir=data_dir, database_url=database_url)
    types, writes = _run(_demo_into_database(settings, patients, seed))
    _print_demo_summary(types, writes, time.perf_counter() - started)


async def load_demo_if_empty(settings: Settings) -> int:
    """Load `settings.demo_patients` demo patients when the database holds no resource at all.

    Returns how many patients were loaded (0 when the database already had data). Running it
    again, or from two servers starting together, never duplicates anything: demo ids are fixed
    and written with update-as-create.
    """
    container = await Container.open(settings)
    try:
        if settings.demo_patients == 0 or not await container.repository.is_empty():
            return 0
        with _progress() as progress:
            task = progress.add_task("Loading demo patients", total=settings.demo_patients)
            await write_demo(
                container.repository,
                settings.demo_patients,
                DEMO_SEED,
                lambda: progress.advance(task),
            )
        await container.repository.refresh_statistics()
    finally:
        await container.close()
    console.print(f"Loaded {settings.demo_patients} synthetic demo patients.")
    return settings.demo_patients


async def write_demo(
    repository: FhirRepository,
    patients: int,
    seed: int,
    on_patient: Callable[[], None] = lambda: None,
    types: Counter[str] | None = None,
) -> bulk.WriteCounts:
    """Store the demo data, one transaction per patient (with everything attached to it)."""
    created = updated = 0
    for number, group in enumerate(demo_data.generate(patients, seed)):
        written = await bulk.put_all(repository, group)
        created, updated = created + written.created, updated + written.updated
        if types is not None:
            types.update(resource["resourceType"] for resource in group)
        if number > 0:  # the first group is the shared directory, not a patient
            on_patient()
    return bulk.WriteCounts(created, updated)


# -- implementation -------------------------------------------------------------------------


async def _demo_into_database(
    settings: Settings, patients: int, seed: int
) -> tuple[Counter[str], bulk.WriteCounts]:
    types: Counter[str] = Counter()
    container = await Container.open(settings)
    try:
        with _progress() as progress:
            task = progress.add_task("Generating patients", total=patients)
            writes = await write_demo(
                container.repository, patients, seed, lambda: progress.advance(task), types
            )
        await container.repository.refresh_statistics()
    finally:
        await container.close()
    return types, writes


def _write_ndjson(output: Path, patients: int, seed: int) -> Counter[str]:
    types: Counter[str] = Counter()
    with _progress() as progress, _open_output(output) as out:
        task = progress.add_task("Generating patients", total=patients)
        for number, group in enumerate(demo_data.generate(patients, seed)):
            out.write(b"".join(orjson.dumps(resource) + b"\n" for resource in group))
            types.update(resource["resourceType"] for resource in group)
            if number > 0:
                progress.advance(task)
    return types


@contextmanager
def _open_output(output: Path) -> Iterator[IO[bytes]]:
    if str(output) == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        with output.open("wb") as file:
            yield file
    except OSError as exc:
        console.print(f"[red]Cannot write {output}: {exc.strerror}.[/red]")
        raise typer.Exit(1) from None


async def _load_files(settings: Settings, files: list[Path]) -> Counter[str]:
    counts: Counter[str] = Counter()
    container = await Container.open(settings)
    try:
        with _progress(bytes_=True) as progress:
            task = progress.add_task("Loading", total=sources.total_size(files))
            for path in files:
                progress.update(task, description=f"Loading {path.name}")
                try:
                    for chunk in sources.read_chunks(path):
                        async for index, outcome in bulk.submit(container.service, chunk.body):
                            counts[outcome.status] += 1
                            if outcome.status == "rejected":
                                _print_rejection(chunk.location, index, outcome)
                        progress.advance(task, chunk.size)
                except sources.UnreadableFile as exc:
                    counts["rejected"] += 1
                    rejected = Text.assemble(("rejected ", "bold red"), exc.location)
                    console.print(rejected.append(f"\n  {exc.reason}"), soft_wrap=True)
        await container.repository.refresh_statistics()
    finally:
        await container.close()
    return counts


def _print_rejection(location: str, index: int | None, outcome: bulk.ImportOutcome) -> None:
    where = location if index is None else f"{location} Bundle.entry[{index}]"
    lines = Text.assemble(("rejected ", "bold red"), where)
    for diagnostics in outcome.diagnostics[:MAX_ISSUES_SHOWN]:
        lines.append(f"\n  {diagnostics}")
    if len(outcome.diagnostics) > MAX_ISSUES_SHOWN:
        lines.append(f"\n  … and {len(outcome.diagnostics) - MAX_ISSUES_SHOWN} more issues")
    console.print(lines, soft_wrap=True)  # unwrapped, so `file:line` stays greppable


def _print_load_summary(counts: Counter[str], files: int, seconds: float) -> None:
    console.print(f"Loaded {files} file(s) in {seconds:.1f} s")
    table = Table()
    table.add_column("outcome")
    table.add_column("resources", justify="right")
    for status in ("created", "updated", "deleted", "unchanged", "rejected"):
        if counts[status] or status in ("created", "updated", "rejected"):
            style = "red" if status == "rejected" and counts[status] else None
            table.add_row(status, str(counts[status]), style=style)
    console.print(table)


def _print_demo_summary(
    types: Counter[str], writes: bulk.WriteCounts | None, seconds: float
) -> None:
    total = sum(types.values())
    rate = total / seconds if seconds > 0 else 0.0
    console.print(f"{total} resources in {seconds:.1f} s ({rate:,.0f}/s)")
    table = Table()
    table.add_column("resource type")
    table.add_column("count", justify="right")
    for resource_type, count in sorted(types.items()):
        table.add_row(resource_type, str(count))
    console.print(table)
    if writes is not None:
        console.print(f"created {writes.created}, updated {writes.updated}")


@contextmanager
def _progress(*, bytes_: bool = False) -> Iterator[Progress]:
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn() if bytes_ else MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        yield progress


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run `work`; a database that cannot be used becomes a one-line message and exit 1."""
    try:
        return asyncio.run(work)
    except SchemaNotCurrent as exc:
        _fail(str(exc))
    except DBAPIError as exc:
        _fail(f"Database error: {str(exc.orig)[:200]}")  # never the statement: it holds data
    except OSError as exc:
        _fail(f"The database cannot be reached: {exc}")
    except FhirError as exc:  # a generated resource failed validation: a bug worth reporting
        _fail(f"Generated data was refused: {exc.diagnostics}")


def _fail(message: str) -> NoReturn:
    console.print(Text(message, style="red"), soft_wrap=True)
    raise typer.Exit(1)
