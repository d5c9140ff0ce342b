"""What the audit trail costs on reads and searches: the real server side by side with the same
app whose audit trail is disconnected (issue 7: overhead ≤ 10 %).

    python -m bench.audit [--backend sqlite|postgres|both] [--duration S] [--rounds N]
                          [--concurrency C] [--patients N] [--nice N] [--python-generator]

Per backend, one store is filled by `santinel demo --patients N` (patients with encounters,
observations, conditions, prescriptions) and a full-access client is registered in it; then it
is copied twice (a directory copy for SQLite, `CREATE DATABASE … TEMPLATE` for PostgreSQL), and
two servers start, one per copy, pinned to the same core (the load generator on another):

- `audit on`:  `santinel serve`, the normal server: every request is audited (one AuditEvent per
  patient whose data is returned, group-committed, awaited before the answer);
- `audit off`: `python -m bench.noaudit_app serve …`, the very same app and arguments with the
  audit trail disconnected (bench only: nothing in `src/` can switch auditing off).

Workloads, with tokens of each server (a fresh one per round), `wrk` when installed:

- read:   GET /fhir/Patient/<random loaded id>
- search: GET /fhir/Observation?subject=Patient/<random loaded id>&_count=20

Alternating rounds (on first in odd rounds, off first in even ones). Overhead = on's extra
cost per request: off req/s ÷ on req/s - 1, and on CPU µs/req ÷ off CPU µs/req - 1 (server CPU,
the least noisy figure), over all rounds and as the median of the rounds. Results:
`bench/results/audit.{json,md}`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import report
from bench.core import (
    MEDIA,
    PG_ADMIN_URL,
    Cell,
    Round,
    Server,
    _clean_env,
    choose_cores,
    free_port,
    postgres_database,
    santinel_command,
    santinel_launcher,
    start_process,
)
from bench.loadgen import LoadSpec, run_load, wrk_path, wrk_version

TARGET_OVERHEAD = 0.10  # issue 7: audited reads and searches cost at most 10 % more
SCOPE = "system/*.cruds"
ON, OFF = "audit on", "audit off"
TARGETS = (ON, OFF)
WORKLOADS = ("read", "search")
SATURATED = 0.85


# -- the stores -----------------------------------------------------------------------------------
def run_cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [*santinel_launcher(), *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"santinel {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def register_client(store: list[str], env: dict[str, str]) -> tuple[str, str]:
    out = run_cli(
        ["clients", "add", "--name", "bench-audit", "--scope", SCOPE, "--secret", "--json", *store],
        env,
    )
    client = json.loads(out)
    return client["client_id"], client["client_secret"]


@contextlib.contextmanager
def stores(backend: str, tmp: Path, patients: int, env: dict[str, str]) -> Any:
    """Two identical stores (flags for `on` and `off`) and the client registered in both."""
    base = tmp / "base"
    if backend == "sqlite":
        flags = ["--data-dir", str(base)]
        run_cli(["demo", "--patients", str(patients), "--seed", "7", *flags], env)
        client = register_client(flags, env)
        for name in ("on", "off"):
            copy_data_dir(base, tmp / name)
        yield ["--data-dir", str(tmp / "on")], ["--data-dir", str(tmp / "off")], client
        return
    with postgres_database() as url:
        flags = ["--database-url", url, "--data-dir", str(base)]
        run_cli(["demo", "--patients", str(patients), "--seed", "7", *flags], env)
        client = register_client(flags, env)
        with postgres_clone(url) as on_url, postgres_clone(url) as off_url:
            for name in ("on", "off"):
                copy_data_dir(base, tmp / name)  # the audit key, the key-encryption key
            yield (
                ["--database-url", on_url, "--data-dir", str(tmp / "on")],
                ["--database-url", off_url, "--data-dir", str(tmp / "off")],
                client,
            )


def copy_data_dir(source: Path, target: Path) -> None:
    """The data dir and the files kept beside it (`<data dir>.kek`, the key-encryption key)."""
    shutil.copytree(source, target)
    for sibling in source.parent.glob(f"{source.name}.*"):
        shutil.copy2(sibling, target.with_name(target.name + sibling.name[len(source.name) :]))


@contextlib.contextmanager
def postgres_clone(url: str) -> Any:
    import asyncpg

    source = url.rsplit("/", 1)[1]
    name = f"{source}_{os.urandom(3).hex()}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
    try:
        yield f"{url.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def authorization(server: Server, client: tuple[str, str]) -> str:
    response = httpx.post(
        f"{server.url}/oauth/token",
        auth=client,
        data={"grant_type": "client_credentials", "scope": SCOPE},
    )
    response.raise_for_status()
    return f"Bearer {response.json()['access_token']}"


def patient_ids(server: Server) -> list[str]:
    headers = {"Accept": MEDIA, "Authorization": server.authorization or ""}
    found = httpx.get(
        f"{server.url}/fhir/Patient",
        params={"_count": "1000", "_elements": "id"},
        headers=headers,
        timeout=60,
    ).json()
    return [entry["resource"]["id"] for entry in found.get("entry", [])]


def newest_event(server: Server) -> str | None:
    headers = {"Accept": MEDIA, "Authorization": server.authorization or ""}
    found = httpx.get(
        f"{server.url}/fhir/AuditEvent", params={"_count": "1"}, headers=headers
    ).json()
    entries = found.get("entry", [])
    return str(entries[0]["resource"]["id"]) if entries else None


def check_servers(servers: dict[str, Server], paths: dict[str, list[str]]) -> dict[str, Any]:
    """Both answer the same reads and searches; `on` audits them and `off` does not."""
    facts: dict[str, Any] = {}
    before = {name: newest_event(server) for name, server in servers.items()}
    answers: dict[str, list[httpx.Response]] = {}
    with httpx.Client(headers={"Accept": MEDIA}, timeout=30) as http:
        for name, server in servers.items():
            answers[name] = [
                http.get(server.url + paths[w][0], headers={"Authorization": server.authorization})
                for w in WORKLOADS
            ]
    on_read, on_search = answers[ON]
    off_read, off_search = answers[OFF]
    if {r.status_code for r in (*answers[ON], *answers[OFF])} != {200}:
        raise RuntimeError("a server did not answer 200 to the sample read and search")
    if on_read.content != off_read.content:
        raise RuntimeError("the two servers do not answer the same read")
    if len(on_search.json()["entry"]) != len(off_search.json()["entry"]):
        raise RuntimeError("the two servers do not answer the same search")
    after = {name: newest_event(server) for name, server in servers.items()}
    if after[ON] == before[ON] or after[OFF] != before[OFF]:
        raise RuntimeError("the audited server did not audit, or the other one did")
    facts["read_body_bytes"] = len(on_read.content)
    facts["search_entries"] = len(on_search.json()["entry"])
    facts["search_body_bytes"] = len(on_search.content)
    return facts


# -- measuring ------------------------------------------------------------------------------------
def measure(
    servers: dict[str, Server],
    paths: dict[str, list[str]],
    client: tuple[str, str],
    *,
    duration: int,
    warmup: int,
    rounds: int,
    concurrency: int,
    generator_cpu: int | None,
    use_wrk: bool,
    workdir: Path,
    nice: int,
) -> dict[tuple[str, str], Cell]:
    cells = {(w, name): Cell(name, w) for w in WORKLOADS for name in TARGETS}
    for index in range(rounds):
        for server in servers.values():
            server.authorization = authorization(server, client)  # tokens live 5 minutes
        order = list(TARGETS) if index % 2 == 0 else list(reversed(TARGETS))
        for workload in WORKLOADS:
            for name in order:
                server = servers[name]
                spec = LoadSpec(
                    server.url, "GET", paths[workload], None, duration, concurrency,
                    generator_cpu, nice, server.authorization,
                )  # fmt: skip
                if index == 0 and warmup > 0:
                    run_load(LoadSpec(**{**spec.__dict__, "duration_s": warmup}), workdir,
                             use_wrk=use_wrk)  # fmt: skip
                before = server.cpu_seconds()
                result = run_load(spec, workdir, use_wrk=use_wrk)
                cell = cells[(workload, name)]
                cell.rounds.append(Round(result, server.cpu_seconds() - before))
                cpu = cell.rounds[-1].server_cpu_s / max(result.requests, 1) * 1e6
                report.console.print(
                    f"  round {index + 1}/{rounds} {workload:<6} {name:<9} "
                    f"{result.rps:>8,.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                    f"p99 {result.p99_ms:6.2f} ms  CPU {cpu:6.0f} µs/req  errors {result.errors}"
                )
    return cells


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def compare(on: Cell, off: Cell) -> dict[str, Any]:
    throughput = _ratio(on.rps, off.rps)
    cpu = _ratio(on.cpu_us_per_request, off.cpu_us_per_request)
    pairs = list(zip(on.rounds, off.rounds, strict=True))
    per_round = [b.load.rps / a.load.rps - 1 for a, b in pairs if a.load.rps]
    per_round_cpu = [
        (a.server_cpu_s / a.load.requests) / (b.server_cpu_s / b.load.requests) - 1
        for a, b in pairs
        if a.load.requests and b.load.requests and b.server_cpu_s
    ]
    overhead = (1 / throughput - 1) if throughput else None
    cpu_overhead = (cpu - 1) if cpu else None
    return {
        "overhead_throughput": round(overhead, 4) if overhead is not None else None,
        "overhead_throughput_per_round": [round(x, 4) for x in per_round],
        "overhead_throughput_median_round": round(statistics.median(per_round), 4)
        if per_round
        else None,
        "overhead_cpu": round(cpu_overhead, 4) if cpu_overhead is not None else None,
        "overhead_cpu_per_round": [round(x, 4) for x in per_round_cpu],
        "overhead_cpu_median_round": round(statistics.median(per_round_cpu), 4)
        if per_round_cpu
        else None,
        "extra_cpu_us_per_request": round(on.cpu_us_per_request - off.cpu_us_per_request, 1)
        if on.cpu_us_per_request and off.cpu_us_per_request
        else None,
        "p50_ratio": round(_ratio(on.p50_ms, off.p50_ms) or 0, 3),
        "p99_ratio": round(_ratio(on.p99_ms, off.p99_ms) or 0, 3),
        "met": overhead is not None and overhead <= TARGET_OVERHEAD,
        "met_by_cpu": cpu_overhead is not None and cpu_overhead <= TARGET_OVERHEAD,
    }


def summarize(backend: str, cells: dict[tuple[str, str], Cell], facts: dict[str, Any]) -> Any:
    rows = []
    for (workload, name), cell in cells.items():
        cpu = cell.cpu_us_per_request
        rows.append(
            {
                "backend": backend,
                "workload": workload,
                "target": name,
                "requests": cell.requests,
                "rps": round(cell.rps, 1),
                "p50_ms": round(cell.p50_ms, 3),
                "p99_ms": round(cell.p99_ms, 3),
                "errors": cell.errors,
                "server_cpu_us_per_request": round(cpu, 1) if cpu else None,
                "server_core_busy": round(cell.server_busy, 3),
                "generator_core_busy": round(cell.generator_busy, 3),
                "rounds": [
                    {**r.load.as_dict(), "server_cpu_s": round(r.server_cpu_s, 2)}
                    for r in cell.rounds
                ],
            }
        )
    comparisons = {
        workload: compare(cells[(workload, ON)], cells[(workload, OFF)]) for workload in WORKLOADS
    }
    return {"backend": backend, "facts": facts, "results": rows, "comparison": comparisons}


# -- reporting ------------------------------------------------------------------------------------
HEADERS = (
    "backend", "workload", "target", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req",
    "srv CPU", "gen CPU",
)  # fmt: skip
COMPARISON_HEADERS = (
    "backend", "workload", "overhead req/s", "median round", "overhead CPU", "median round",
    "+CPU µs/req", "p50 on/off", "p99 on/off", "target",
)  # fmt: skip


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def table_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [
        [r["backend"], r["workload"], r["target"], r["rps"], r["p50_ms"], r["p99_ms"],
         r["errors"], r["server_cpu_us_per_request"], f"{r['server_core_busy']:.0%}",
         f"{r['generator_core_busy']:.0%}"]
        for run in data["runs"]
        for r in run["results"]
    ]  # fmt: skip


def comparison_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    rows: list[list[report.Cell]] = []
    for run in data["runs"]:
        for workload, c in run["comparison"].items():
            rows.append(
                [run["backend"], workload, _pct(c["overhead_throughput"]),
                 _pct(c["overhead_throughput_median_round"]), _pct(c["overhead_cpu"]),
                 _pct(c["overhead_cpu_median_round"]), c["extra_cpu_us_per_request"],
                 c["p50_ratio"], c["p99_ratio"], f"≤ {TARGET_OVERHEAD:.0%}"]
            )  # fmt: skip
    return rows


def verdict_text(data: dict[str, Any]) -> str:
    parts = []
    for run in data["runs"]:
        for workload, c in run["comparison"].items():
            parts.append(
                f"{run['backend']} {workload}: {_pct(c['overhead_throughput'])} req/s "
                f"({'met' if c['met'] else 'NOT met'}), {_pct(c['overhead_cpu'])} CPU "
                f"({'met' if c['met_by_cpu'] else 'NOT met'})"
            )
    text = "Audit overhead (target ≤ 10 %): " + "; ".join(parts) + "."
    busy = min(r["server_core_busy"] for run in data["runs"] for r in run["results"])
    if busy < SATURATED:
        text += (
            f" A server used only {busy:.0%} of its core (other work took the rest, or it "
            "waited on the disk or the database): throughput figures are noisy, trust the CPU "
            "figures and the median round."
        )
    return text


def to_markdown(data: dict[str, Any]) -> str:
    s, env = data["settings"], data["environment"]
    facts = "; ".join(
        f"{run['backend']}: read body {run['facts']['read_body_bytes']} B, search "
        f"{run['facts']['search_entries']} entries ({run['facts']['search_body_bytes']} B)"
        for run in data["runs"]
    )
    lines = [
        "# Santinel audit trail overhead (read by id, search)",
        "",
        f"{env['date']}, commit {env['commit']}, Python {env['python']}, {env['cpus']} CPUs, "
        f"load average at start {env['load_average_at_start']}.",
        f"Generator: {s['generator']}, {s['concurrency']} connections; {s['pinning']}.",
        f"{s['duration_s_per_round']} s per target, workload and round, {s['rounds']} "
        f"alternating rounds after {s['warmup_s']} s warm-up; `santinel demo --patients "
        f"{s['patients']}` copied into one store per server; {facts}.",
        "",
        "`audit on`: `santinel serve`. `audit off`: the same app and arguments with the audit "
        "trail disconnected (`bench/noaudit_app.py`).",
        "",
        report.markdown_table(HEADERS, table_rows(data)),
        report.markdown_table(COMPARISON_HEADERS, comparison_rows(data)),
        "Overhead = extra cost per audited request: off req/s ÷ on req/s - 1 and on CPU "
        "µs/req ÷ off CPU µs/req - 1, over all rounds and as the median round.",
        "",
        verdict_text(data),
    ]
    return "\n".join(lines) + "\n"


def run_backend(
    backend: str, args: argparse.Namespace, cores: tuple[int | None, int | None]
) -> dict[str, Any]:
    server_cpu, generator_cpu = cores
    env = _clean_env()
    use_wrk = wrk_path() is not None and not args.python_generator
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="santinel-auditbench-")))
        started = time.perf_counter()
        on_store, off_store, client = stack.enter_context(stores(backend, tmp, args.patients, env))
        report.console.print(
            f"{backend}: {args.patients} demo patients loaded and copied in "
            f"{time.perf_counter() - started:.0f} s"
        )
        on = start_process(
            ON, santinel_command(free_port(), on_store), env, tmp / "on.log", server_cpu,
            args.nice,
        )  # fmt: skip
        stack.callback(on.stop)
        serve_args = santinel_command(free_port(), off_store)[len(santinel_launcher()) :]
        off = start_process(
            OFF, [sys.executable, "-m", "bench.noaudit_app", *serve_args], env, tmp / "off.log",
            server_cpu, args.nice,
        )  # fmt: skip
        stack.callback(off.stop)
        servers = {ON: on, OFF: off}
        for server in servers.values():
            server.authorization = authorization(server, client)
        ids = patient_ids(on)
        if not ids:
            raise RuntimeError("no patient loaded")
        paths = {
            "read": [f"/fhir/Patient/{i}" for i in ids],
            "search": [f"/fhir/Observation?subject=Patient/{i}&_count=20" for i in ids],
        }
        facts = check_servers(servers, paths)
        cells = measure(
            servers, paths, client,
            duration=args.duration, warmup=args.warmup, rounds=args.rounds,
            concurrency=args.concurrency, generator_cpu=generator_cpu, use_wrk=use_wrk,
            workdir=tmp / "load", nice=args.nice,
        )  # fmt: skip
        return summarize(backend, cells, facts)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--duration", type=int, default=5, help="seconds per target and round")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds (first round)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections")
    parser.add_argument("--patients", type=int, default=200, help="demo patients loaded first")
    parser.add_argument("--python-generator", action="store_true", help="never use wrk")
    parser.add_argument("--nice", type=int, default=0, help="priority change for the processes")
    parser.add_argument("--output", default="audit", help="results name in bench/results")
    args = parser.parse_args(argv)
    args.duration = min(max(args.duration, 1), 60)  # a round's two tokens must outlive it
    args.rounds = min(max(args.rounds, 1), 20)
    args.patients = min(max(args.patients, 1), 1000)
    cores = choose_cores()
    server_cpu, generator_cpu = cores
    use_wrk = wrk_path() is not None and not args.python_generator
    pinning = (
        f"both servers pinned to core {server_cpu}, load generator to core {generator_cpu}"
        if server_cpu is not None
        else "no pinning (fewer than 2 usable cores)"
    )
    if generator_cpu is not None:
        os.sched_setaffinity(0, {generator_cpu})
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    runs = [run_backend(backend, args, cores) for backend in backends]
    data = {
        "benchmark": "audit",
        "environment": report.environment(),
        "settings": {
            "duration_s_per_round": args.duration,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "patients": args.patients,
            "generator": wrk_version() if use_wrk else "python (httpx, uvloop)",
            "pinning": pinning,
        },
        "runs": runs,
    }
    report.print_table("Audit on vs off", HEADERS, table_rows(data))
    report.print_table("Audit overhead", COMPARISON_HEADERS, comparison_rows(data))
    report.console.print(verdict_text(data))
    report.write_results(args.output, data, to_markdown(data))
    return data


if __name__ == "__main__":
    main()
