"""Ingest: synthetic patient Bundles as 100-entry transactions vs the same resources as single
writes, through the real service layer (validation, indexing, durable commits), on SQLite and
PostgreSQL, side by side in one run.

    .venv/bin/python -m bench.ingest [--backend sqlite|postgres|both] [--patients N]

Each mode writes the same resources into its own fresh database; the table gives resources/s,
the ratio of transactions to single writes, and this process's CPU time per resource (on a
shared machine, the work itself; the rest is waiting: durable commits, the database server).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson

from bench.harness import postgres_database
from bench.report import environment, markdown_table, print_table, write_results
from santinel.demo.generator import generate
from santinel.services.container import Container
from santinel.services.guard import OPERATOR
from santinel.services.request import FhirRequest
from santinel.settings import Settings

ENTRIES_PER_BUNDLE = 100


def resources(patients: int) -> list[dict[str, Any]]:
    return [r for group in generate(patients=patients, seed=11) for r in group]


def bundles(items: list[dict[str, Any]]) -> Iterator[bytes]:
    for start in range(0, len(items), ENTRIES_PER_BUNDLE):
        entries = [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in items[start : start + ENTRIES_PER_BUNDLE]
        ]
        yield orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})


async def timed(settings: Settings, requests: list[FhirRequest]) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds: every thread, not the PostgreSQL server's)."""
    container = await Container.open(settings)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        for request in requests:
            response = await container.service.handle(request)
            if response.status not in (200, 201):
                raise RuntimeError(f"unexpected status {response.status}")
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        await container.close()


def requests_for(mode: str, items: list[dict[str, Any]]) -> list[FhirRequest]:
    headers = {"prefer": "return=minimal", "content-type": "application/fhir+json"}
    if mode == "transaction":
        return [
            FhirRequest("POST", (), headers=headers, body=b, principal=OPERATOR)
            for b in bundles(items)
        ]
    return [
        FhirRequest("PUT", (r["resourceType"], r["id"]), headers=headers, body=orjson.dumps(r),
                    principal=OPERATOR)
        for r in items
    ]  # fmt: skip


def settings_for(backend: str, stack: ExitStack, tmp: Path, mode: str) -> Settings:
    if backend == "sqlite":
        return Settings(data_dir=tmp / f"{backend}-{mode}", max_body_bytes=64 * 1024 * 1024)
    return Settings(database_url=stack.enter_context(postgres_database()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--patients", type=int, default=20)
    args = parser.parse_args(argv)
    items = resources(max(1, min(args.patients, 10_000)))
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    rows: list[list[Any]] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory() as folder:
        for backend in backends:
            seconds = {}
            for mode in ("single", "transaction"):
                settings = settings_for(backend, stack, Path(folder), mode)
                seconds[mode] = asyncio.run(timed(settings, requests_for(mode, items)))
            single_rate = len(items) / seconds["single"][0]
            for mode, (took, cpu) in seconds.items():
                rate = len(items) / took
                rows.append([backend, mode, len(items), round(took, 2), round(rate, 1),
                             round(rate / single_rate, 2),
                             round(1000 * cpu / len(items), 3)])  # fmt: skip
    # CPU per resource tells the work apart from waiting (fsync, the PostgreSQL server, other
    # processes on a shared machine): single writes wait for one durable commit each.
    headers = ["backend", "mode", "resources", "seconds", "resources/s", "x single", "cpu ms/res"]
    print_table("Ingest: 100-entry transactions vs single writes", headers, rows)
    markdown = "# Ingest benchmark\n\n" + markdown_table(headers, rows) + "\n"
    data = {"environment": environment(), "rows": rows, "entries_per_bundle": ENTRIES_PER_BUNDLE}
    write_results(f"ingest-{args.backend}", data, markdown)


if __name__ == "__main__":
    main()
