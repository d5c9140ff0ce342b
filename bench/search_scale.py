"""Does search latency follow the result or the table? Three patient-centred searches on stores of
1,000 and 10,000 demo patients, side by side, with the plans of what the server ran (issue 3).

    python -m bench.search_scale [--backend sqlite|postgres|both] [--sizes 1000,10000]
                                 [--seed S] [--sample K] [--duration S] [--rounds N]
                                 [--concurrency C] [--keep-stores DIR] [--nice N]
                                 [--python-generator] [--output NAME]

Per backend, one store per size is filled by `santinel demo --patients N --seed S` (timed; on
PostgreSQL it ends with ANALYZE) and served by its own `santinel serve` (tokens of a
full-access client, audit on: the real server), all pinned to one core, the load generator to
another. Queries, over K patients drawn evenly from the smallest size, so every size answers
the very same results (demo patient i is the same whatever the size):

- code:       GET /fhir/Observation?patient=X&code=http://loinc.org|Y  (Y: X's most frequent code)
- sorted:     GET /fhir/Observation?patient=X&_sort=-date&_count=10
- revinclude: GET /fhir/Encounter?patient=X&_revinclude=Observation:encounter

Before measuring, every path is checked on every store against the counts the generator implies.
Each query runs `--rounds` times per store, stores in rotating order (noise hits every size
alike), `--duration` seconds each, after a warm-up. Reported: p50/p99 per query, size and
backend (median of the rounds), the growth p50(largest)/p50(smallest) against the 1.5x limit,
and the query plans: each store is then served once by `bench/sql_capture_app.py` (the same
command, logging its SQL), one request per query, and every SELECT over resources and search
indexes it ran is explained on that store (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN (ANALYZE,
BUFFERS)` on PostgreSQL); a plan reading a whole search table is flagged.

`--keep-stores DIR` keeps the loaded stores (SQLite data dirs, PostgreSQL databases
`santinel_scale_<size>_s<seed>` on the bench server) and reuses them in later runs (migrated,
and analyzed again on PostgreSQL): loading 10,000 patients takes minutes. Without it everything
is temporary. Results: `bench/results/<output>.{json,md}` (default `search-scale`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench import harness, query_plans, report
from santinel.demo.generator import patient_group

MAX_GROWTH = 1.5  # issue 3: p50 at 10,000 patients at most 1.5 x p50 at 1,000
LOINC = "http://loinc.org"
QUERIES = {
    "code": "Observation?patient=X&code=Y",
    "sorted": "Observation?patient=X&_sort=-date&_count=10",
    "revinclude": "Encounter?patient=X&_revinclude=Observation:encounter",
}
SORTED_COUNT = 10


# -- what to ask, and what the answers must be --------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One demo patient, its searches and the number of entries each must return."""

    patient: str
    code: str  # system|code of its most frequent observation code
    paths: dict[str, str]
    expected: dict[str, int]


def choose_samples(seed: int, population: int, count: int) -> list[Sample]:
    """`count` patients spread evenly over the first `population` of a seed (the generator is
    pure: no store is needed to know what they have)."""
    indexes = sorted({i * population // count for i in range(min(count, population))})
    return [sample_of(patient_group(seed, index)) for index in indexes]


def sample_of(group: list[dict[str, Any]]) -> Sample:
    patient = next(r["id"] for r in group if r["resourceType"] == "Patient")
    observations = [r for r in group if r["resourceType"] == "Observation"]
    encounters = [r for r in group if r["resourceType"] == "Encounter"]
    codes_of = [
        {f"{c['system']}|{c['code']}" for c in o["code"]["coding"] if c.get("system") == LOINC}
        for o in observations
    ]
    tally = Counter(code for codes in codes_of for code in codes)
    code = min(tally, key=lambda c: (-tally[c], c))  # the most frequent, then the smallest
    encounter_refs = {f"Encounter/{e['id']}" for e in encounters}
    linked = [o for o in observations if o.get("encounter", {}).get("reference") in encounter_refs]
    paths = {
        "code": f"/fhir/Observation?patient={patient}&code={quote(code, safe='')}",
        "sorted": f"/fhir/Observation?patient={patient}&_sort=-date&_count={SORTED_COUNT}",
        "revinclude": f"/fhir/Encounter?patient={patient}&_revinclude=Observation:encounter",
    }
    expected = {
        "code": sum(code in codes for codes in codes_of),
        "sorted": min(SORTED_COUNT, len(observations)),
        "revinclude": len(encounters) + len(linked),
    }
    return Sample(patient, code, paths, expected)


def check_answers(server: harness.Server, samples: Sequence[Sample]) -> dict[str, float]:
    """Every path answers 200 with the expected number of entries; the mean entries per query."""
    entries: dict[str, list[int]] = {q: [] for q in QUERIES}
    headers = {"Accept": harness.MEDIA, **harness.auth_headers(server)}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        for sample in samples:
            for query, path in sample.paths.items():
                answer = client.get(path)
                if answer.status_code != 200:
                    raise RuntimeError(f"{server.name} {path}: {answer.status_code}")
                found = len(answer.json().get("entry", []))
                if found != sample.expected[query]:
                    raise RuntimeError(
                        f"{server.name} {path}: {found} entries, {sample.expected[query]} expected"
                    )
                entries[query].append(found)
    return {q: round(sum(n) / len(n), 1) for q, n in entries.items()}


# -- stores ---------------------------------------------------------------------------------------
@dataclass
class Store:
    backend: str
    size: int
    flags: list[str]  # --data-dir … [--database-url …]
    database: str  # the SQLite file, or the PostgreSQL URL
    load_seconds: float | None = None  # None: reused from an earlier run
    resources: int | None = None


@contextlib.contextmanager
def open_store(
    backend: str, size: int, seed: int, root: Path, keep: bool, env: dict[str, str]
) -> Iterator[Store]:
    """A store holding `santinel demo --patients size --seed seed`: loaded now, or kept from an
    earlier run (`keep`) and brought up to date (migrations, statistics)."""
    data_dir = root / f"{backend}-{size}-s{seed}"
    loaded = data_dir.with_name(data_dir.name + ".loaded")  # written once the demo finished
    reuse = keep and loaded.exists()
    if not reuse:
        remove_data_dir(data_dir)
        loaded.unlink(missing_ok=True)
    if backend == "sqlite":
        store = Store(backend, size, ["--data-dir", str(data_dir)], str(data_dir / SQLITE_FILE))
        yield fill(store, seed, loaded, reuse, env)
        return
    with postgres_store(f"santinel_scale_{size}_s{seed}", keep, reuse) as url:
        flags = ["--database-url", url, "--data-dir", str(data_dir)]
        yield fill(Store(backend, size, flags, url), seed, loaded, reuse, env)


SQLITE_FILE = "santinel.sqlite3"


def remove_data_dir(data_dir: Path) -> None:
    """The data dir and the files kept beside it (`<data dir>.kek`, the key-encryption key)."""
    shutil.rmtree(data_dir, ignore_errors=True)
    for sibling in data_dir.parent.glob(f"{data_dir.name}.*"):
        sibling.unlink()


def fill(store: Store, seed: int, loaded: Path, reuse: bool, env: dict[str, str]) -> Store:
    if reuse:
        harness.santinel_cli(["db", "upgrade", *store.flags], env)
        analyze(store)
        report.console.print(f"{store.backend} {store.size:,}: reusing the kept store")
        return store
    started = time.perf_counter()
    done = subprocess.run(
        [*harness.santinel_launcher(), "demo", "--patients", str(store.size), "--seed",
         str(seed), *store.flags],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"santinel demo failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    store.load_seconds = round(time.perf_counter() - started, 1)
    counted = re.search(r"(\d+) resources in", done.stderr)
    store.resources = int(counted[1]) if counted else None
    loaded.write_text(f"{store.resources}\n")
    report.console.print(
        f"{store.backend} {store.size:,}: santinel demo wrote {store.resources or '?'} resources "
        f"in {store.load_seconds:.0f} s"
    )
    return store


def analyze(store: Store) -> None:
    """Planner statistics, as `santinel demo` leaves them (a migration may have added indexes):
    ANALYZE on PostgreSQL; nothing on SQLite, which Santinel lets plan without statistics."""
    if store.backend == "postgres":
        pg_run(store.database, "ANALYZE")


def pg_run(url: str, sql: str) -> list[Any]:
    import asyncpg

    async def run() -> list[Any]:
        connection = await asyncpg.connect(url, timeout=10)
        try:
            return list(await connection.fetch(sql))
        finally:
            await connection.close()

    return asyncio.run(run())


@contextlib.contextmanager
def postgres_store(name: str, keep: bool, reuse: bool) -> Iterator[str]:
    """A fresh temporary database, or (`keep`) the database `name`, kept after the run."""
    if not keep:
        with harness.postgres_database() as url:
            yield url
        return
    if not reuse:
        harness.pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        harness.pg_admin(f'CREATE DATABASE "{name}"')
    yield f"{harness.PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


# -- measuring ------------------------------------------------------------------------------------
def measure(
    servers: dict[int, harness.Server],
    clients: dict[int, tuple[str, str]],
    samples: Sequence[Sample],
    plan: harness.Plan,
) -> dict[tuple[str, int], harness.Cell]:
    sizes = list(servers)
    cells = {(q, size): harness.Cell(str(size), q) for q in QUERIES for size in sizes}
    for index in range(plan.rounds):
        for size, server in servers.items():  # tokens live 5 minutes: a fresh one per round
            server.authorization = harness.bearer(server, clients[size])
        for query in QUERIES:
            paths = [s.paths[query] for s in samples]
            for name in harness.rotate([str(size) for size in sizes], index):
                size = int(name)
                server = servers[size]
                spec = plan.spec(server, paths, server.authorization)
                result = plan.measure(index, cells[(query, size)], server, spec)
                labels = f"{query:<10} {size:>7,}"
                cpu = cells[(query, size)].rounds[-1].cpu_us_per_request
                harness.progress(index, plan.rounds, labels, result, rps_width=7, cpu_us=cpu)
    return cells


def capture_plans(
    store: Store,
    client: tuple[str, str],
    sample: Sample,
    setup: tuple[dict[str, str], Path, int | None, int],
) -> dict[str, Any]:
    """Serve the store with `bench.sql_capture_app`, send each query once, explain what ran."""
    env, tmp, server_cpu, nice = setup
    log = tmp / f"sql-{store.backend}-{store.size}.ndjson"
    log.write_text("")
    command = harness.bench_app_command("bench.sql_capture_app", harness.free_port(), store.flags)
    name = f"capture-{store.size}"
    server = harness.start_process(
        name, command, {**env, "BENCH_SQL_LOG": str(log)}, tmp / f"{name}.log", server_cpu, nice
    )
    try:
        server.authorization = harness.bearer(server, client)
        headers = {"Accept": harness.MEDIA, **harness.auth_headers(server)}
        plans: dict[str, Any] = {}
        offset = log.stat().st_size
        for query, path in sample.paths.items():
            httpx.get(server.url + path, headers=headers, timeout=60).raise_for_status()
            statements, offset = query_plans.read_statements(log, offset)
            explained = (
                query_plans.explain_sqlite(Path(store.database), statements)
                if store.backend == "sqlite"
                else query_plans.explain_postgres(store.database, statements)
            )
            others = [s.summary for s in statements if not s.explained]
            plans[query] = {
                "path": path,
                "explained": [query_plans.as_dict(e) for e in explained],
                "other_statements": others,
            }
        return plans
    finally:
        server.stop()


# -- one backend ----------------------------------------------------------------------------------
def run_backend(
    backend: str, args: argparse.Namespace, samples: Sequence[Sample], load: harness.LoadSetup
) -> dict[str, Any]:
    env = harness.clean_env()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="santinel-scale-")))
        root = Path(args.keep_stores).resolve() if args.keep_stores else tmp
        root.mkdir(parents=True, exist_ok=True)
        stores: dict[int, Store] = {}
        for size in args.sizes:
            opening = open_store(backend, size, args.seed, root, bool(args.keep_stores), env)
            stores[size] = stack.enter_context(opening)
        clients = {
            size: harness.register_client("bench-search-scale", s.flags, env)
            for size, s in stores.items()
        }
        servers: dict[int, harness.Server] = {}
        for size, store in stores.items():
            command = harness.santinel_command(harness.free_port(), store.flags)
            name = f"{backend}-{size}"
            server = harness.start_process(
                name, command, env, tmp / f"{name}.log", load.server_cpu, args.nice
            )
            stack.callback(server.stop)
            server.authorization = harness.bearer(server, clients[size])
            servers[size] = server
        entries = {size: check_answers(server, samples) for size, server in servers.items()}
        report.console.print(f"{backend}: every store gives the expected answers {entries}")
        plan = harness.Plan(
            args.duration, args.warmup, args.rounds, args.concurrency, load.generator_cpu,
            load.use_wrk, tmp / "load", args.nice,
        )  # fmt: skip
        cells = measure(servers, clients, samples, plan)
        rss = {size: server.peak_rss_mb() for size, server in servers.items()}
        for server in servers.values():
            server.stop()
        setup = (env, tmp, load.server_cpu, args.nice)
        plans = {
            size: capture_plans(store, clients[size], samples[0], setup)
            for size, store in stores.items()
        }
        return summarize(backend, stores, cells, plans, entries, rss)


def summarize(
    backend: str,
    stores: dict[int, Store],
    cells: dict[tuple[str, int], harness.Cell],
    plans: dict[int, dict[str, Any]],
    entries: dict[int, dict[str, float]],
    rss: dict[int, float | None],
) -> dict[str, Any]:
    sizes = sorted(stores)
    rows = [
        {
            "backend": backend,
            "query": query,
            "patients": size,
            **harness.load_figures(cells[(query, size)]),
            **harness.busy_figures(cells[(query, size)]),
            "mean_entries": entries[size][query],
            "rounds": harness.round_figures(cells[(query, size)]),
        }
        for query in QUERIES
        for size in sizes
    ]
    growth = []
    smallest = sizes[0]
    for query in QUERIES:
        base = cells[(query, smallest)]
        for size in sizes[1:]:
            cell = cells[(query, size)]
            p50 = harness.ratio(cell.p50_ms, base.p50_ms)
            growth.append(
                {
                    "backend": backend,
                    "query": query,
                    "from": smallest,
                    "to": size,
                    "p50_ratio": harness.rounded(p50, 3),
                    "p99_ratio": harness.rounded(harness.ratio(cell.p99_ms, base.p99_ms), 3),
                    "cpu_ratio": harness.rounded(
                        harness.ratio(cell.cpu_us_per_request, base.cpu_us_per_request), 3
                    ),
                    "passed": p50 is not None and p50 <= MAX_GROWTH,
                }
            )
    full_scans = sorted(
        {
            f"{query} at {size:,}: {table}"
            for size, by_query in plans.items()
            for query, found in by_query.items()
            for item in found["explained"]
            for table in item["full_scans"]
        }
    )
    return {
        "backend": backend,
        "stores": [
            {
                "patients": s.size,
                "demo_seconds": s.load_seconds,
                "resources": s.resources,
                "resources_per_s": round(s.resources / s.load_seconds)
                if s.resources and s.load_seconds
                else None,
                "server_peak_rss_mb": harness.rounded(rss.get(s.size), 1),
            }
            for s in stores.values()
        ],
        "results": rows,
        "growth": growth,
        "plans": {str(size): by_query for size, by_query in plans.items()},
        "full_scans": full_scans,
    }


# -- reporting ------------------------------------------------------------------------------------
HEADERS = (
    "backend", "query", "patients", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req",
    "srv CPU", "gen CPU", "entries",
)  # fmt: skip
GROWTH_HEADERS = (
    "backend", "query", "patients", "p50 ratio", "p99 ratio", "CPU ratio", f"p50 ≤ {MAX_GROWTH}x",
)  # fmt: skip
LOAD_HEADERS = ("backend", "patients", "resources", "santinel demo s", "resources/s")


def table_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [
        [r["backend"], r["query"], r["patients"], *harness.load_columns(r), r["mean_entries"]]
        for run in data["runs"]
        for r in run["results"]
    ]


def growth_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [
        [g["backend"], g["query"], f"{g['from']:,} → {g['to']:,}", g["p50_ratio"],
         g["p99_ratio"], g["cpu_ratio"], "PASS" if g["passed"] else "FAIL"]
        for run in data["runs"]
        for g in run["growth"]
    ]  # fmt: skip


def load_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [
        [run["backend"], s["patients"], s["resources"], s["demo_seconds"] or "reused",
         s["resources_per_s"]]
        for run in data["runs"]
        for s in run["stores"]
    ]  # fmt: skip


def verdict_text(data: dict[str, Any]) -> str:
    growth = [g for run in data["runs"] for g in run["growth"]]
    failed = [f"{g['backend']} {g['query']} x{g['p50_ratio']}" for g in growth if not g["passed"]]
    scans = [f"{run['backend']} {s}" for run in data["runs"] for s in run["full_scans"]]
    text = (
        f"p50 growth ≤ {MAX_GROWTH}x: "
        + ("PASS for every query and backend" if not failed else "FAIL: " + ", ".join(failed))
        + ". "
    )
    text += (
        "No plan reads a whole search table."
        if not scans
        else "Plans reading a whole table: " + "; ".join(scans) + "."
    )
    return text


def plans_markdown(data: dict[str, Any]) -> list[str]:
    lines = ["## Query plans", ""]
    for run in data["runs"]:
        for size, by_query in run["plans"].items():
            for query, found in by_query.items():
                lines += [f"### {run['backend']}, {int(size):,} patients, {query}", ""]
                lines += [f"`GET {found['path']}`", ""]
                for item in found["explained"]:
                    flag = f" — **reads all of {', '.join(item['full_scans'])}**"
                    lines += [
                        "```sql",
                        item["sql"],
                        "```",
                        "```" + (flag if item["full_scans"] else ""),
                        *item["plan"],
                        "```",
                        "",
                    ]
                if found["other_statements"]:
                    others = "; ".join(f"`{s}`" for s in found["other_statements"])
                    lines += [f"Also ran (not explained): {others}.", ""]
    return lines


def to_markdown(data: dict[str, Any]) -> str:
    s, env = data["settings"], data["environment"]
    lines = [
        "# Santinel search at scale (issue 3)",
        "",
        harness.machine_line(env),
        harness.generator_line(s),
        f"{s['duration_s_per_round']} s per query, store and round, {s['rounds']} rotating rounds "
        f"after {s['warmup_s']} s warm-up; `santinel demo --seed {s['seed']}` stores of "
        f"{', '.join(f'{n:,}' for n in s['sizes'])} patients; {s['sample']} patients queried "
        "(the same in every store).",
        "",
        "Queries: " + "; ".join(f"`{name}` = `{text}`" for name, text in QUERIES.items()) + ".",
        "",
        report.markdown_table(HEADERS, table_rows(data)),
        report.markdown_table(GROWTH_HEADERS, growth_rows(data)),
        report.markdown_table(LOAD_HEADERS, load_rows(data)),
        verdict_text(data),
        "",
        *plans_markdown(data),
    ]
    return "\n".join(lines) + "\n"


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if len(sizes) < 2 or sizes[0] < 1 or sizes[-1] > 100_000:
        raise argparse.ArgumentTypeError("two or more sizes between 1 and 100,000")
    return sizes


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = harness.cli_parser(__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--sizes", type=parse_sizes, default=[1000, 10000])
    parser.add_argument("--seed", type=int, default=7, help="santinel demo --seed")
    parser.add_argument("--sample", type=int, default=40, help="distinct patients queried")
    parser.add_argument("--duration", type=int, default=5, help="seconds per query and round")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds (first round)")
    parser.add_argument("--rounds", type=int, default=3, help="rotating rounds")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent connections")
    parser.add_argument("--keep-stores", help="keep the loaded stores here and reuse them")
    parser.add_argument("--python-generator", action="store_true", help="never use wrk")
    parser.add_argument("--nice", type=int, default=0, help="priority change for the processes")
    parser.add_argument("--output", default="search-scale", help="results name in bench/results")
    args = parser.parse_args(argv)
    args.duration = harness.clamp(args.duration, 1, 60)  # a round's tokens must outlive it
    args.rounds = harness.clamp(args.rounds, 1, 10)
    args.sample = harness.clamp(args.sample, 1, args.sizes[0])
    args.concurrency = harness.clamp(args.concurrency, 1, 256)
    cores = harness.choose_cores()
    pinning = harness.with_nice(harness.pinning_text(cores), args.nice)
    load = harness.prepare_load(
        python_generator=args.python_generator, pinning=pinning, cores=cores
    )
    harness.announce(load)
    samples = choose_samples(args.seed, args.sizes[0], args.sample)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    runs = [run_backend(backend, args, samples, load) for backend in backends]
    settings = {
        "sizes": args.sizes,
        "seed": args.seed,
        "sample": len(samples),
        "duration_s_per_round": args.duration,
        "rounds": args.rounds,
        "warmup_s": args.warmup,
        "concurrency": args.concurrency,
        "generator": load.generator,
        "pinning": pinning,
    }
    data = {
        "benchmark": "search_scale",
        "environment": report.environment(),
        "settings": settings,
        "runs": runs,
    }
    tables = [
        ("Search latency per store size", HEADERS, table_rows(data)),
        ("Growth from the smallest store", GROWTH_HEADERS, growth_rows(data)),
        ("Loading (santinel demo)", LOAD_HEADERS, load_rows(data)),
    ]
    report.publish(args.output, data, to_markdown(data), tables, verdict_text(data))
    return data


if __name__ == "__main__":
    main()
