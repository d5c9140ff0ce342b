"""What the audit trail costs on reads and searches: the real server side by side with the same
app whose audit trail is disconnected (issue 7: overhead ≤ 10 %).

    python -m bench.audit [--backend sqlite|postgres|both] [--duration S] [--rounds N]
                          [--concurrency C] [--patients N] [--nice N] [--python-generator]
                          [--flush-reads]

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
import contextlib
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import harness, report

TARGET_OVERHEAD = 0.10  # issue 7: audited reads and searches cost at most 10 % more
ON, OFF = "audit on", "audit off"
TARGETS = (ON, OFF)
WORKLOADS = ("read", "search")
SATURATED = 0.85


# -- the stores -----------------------------------------------------------------------------------
@contextlib.contextmanager
def stores(backend: str, tmp: Path, patients: int, env: dict[str, str]) -> Any:
    """Two identical stores (flags for `on` and `off`) and the client registered in both."""
    base = tmp / "base"
    if backend == "sqlite":
        flags = ["--data-dir", str(base)]
        harness.santinel_cli(["demo", "--patients", str(patients), "--seed", "7", *flags], env)
        client = harness.register_client("bench-audit", flags, env)
        for name in ("on", "off"):
            copy_data_dir(base, tmp / name)
        yield ["--data-dir", str(tmp / "on")], ["--data-dir", str(tmp / "off")], client
        return
    with harness.postgres_database() as url:
        template = url.rsplit("/", 1)[1]
        flags = ["--database-url", url, "--data-dir", str(base)]
        harness.santinel_cli(["demo", "--patients", str(patients), "--seed", "7", *flags], env)
        client = harness.register_client("bench-audit", flags, env)
        with (
            harness.postgres_database(template) as on_url,
            harness.postgres_database(template) as off_url,
        ):
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


def patient_ids(server: harness.Server) -> list[str]:
    headers = {"Accept": harness.MEDIA, "Authorization": server.authorization or ""}
    found = httpx.get(
        f"{server.url}/fhir/Patient",
        params={"_count": "1000", "_elements": "id"},
        headers=headers,
        timeout=60,
    ).json()
    return [entry["resource"]["id"] for entry in found.get("entry", [])]


def newest_event(server: harness.Server) -> str | None:
    headers = {"Accept": harness.MEDIA, "Authorization": server.authorization or ""}
    found = httpx.get(
        f"{server.url}/fhir/AuditEvent", params={"_count": "1"}, headers=headers
    ).json()
    entries = found.get("entry", [])
    return str(entries[0]["resource"]["id"]) if entries else None


def check_servers(
    servers: dict[str, harness.Server], paths: dict[str, list[str]]
) -> dict[str, Any]:
    """Both answer the same reads and searches; `on` audits them and `off` does not."""
    facts: dict[str, Any] = {}
    before = {name: newest_event(server) for name, server in servers.items()}
    answers: dict[str, list[httpx.Response]] = {}
    with httpx.Client(headers={"Accept": harness.MEDIA}, timeout=30) as http:
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
    servers: dict[str, harness.Server],
    paths: dict[str, list[str]],
    client: tuple[str, str],
    plan: harness.Plan,
) -> dict[tuple[str, str], harness.Cell]:
    cells = {(w, name): harness.Cell(name, w) for w in WORKLOADS for name in TARGETS}
    for index in range(plan.rounds):
        for server in servers.values():
            server.authorization = harness.bearer(server, client)  # tokens live 5 minutes
        for workload in WORKLOADS:
            for name in harness.alternate(TARGETS, index):
                server, cell = servers[name], cells[(workload, name)]
                spec = plan.spec(server, paths[workload], server.authorization)
                result = plan.measure(index, cell, server, spec)
                cpu = cell.rounds[-1].cpu_us_per_request
                labels = f"{workload:<6} {name:<9}"
                harness.progress(index, plan.rounds, labels, result, rps_width=8, cpu_us=cpu)
    return cells


def compare(on: harness.Cell, off: harness.Cell) -> dict[str, Any]:
    throughput = harness.ratio(on.rps, off.rps)
    cpu = harness.ratio(on.cpu_us_per_request, off.cpu_us_per_request)
    per_round, per_round_cpu = harness.paired_overheads(on, off)
    overhead = (1 / throughput - 1) if throughput else None
    cpu_overhead = (cpu - 1) if cpu else None
    return {
        "overhead_throughput": harness.rounded(overhead, 4),
        "overhead_throughput_per_round": [round(x, 4) for x in per_round],
        "overhead_throughput_median_round": harness.rounded_median(per_round),
        "overhead_cpu": harness.rounded(cpu_overhead, 4),
        "overhead_cpu_per_round": [round(x, 4) for x in per_round_cpu],
        "overhead_cpu_median_round": harness.rounded_median(per_round_cpu),
        "extra_cpu_us_per_request": round(on.cpu_us_per_request - off.cpu_us_per_request, 1)
        if on.cpu_us_per_request and off.cpu_us_per_request
        else None,
        "p50_ratio": round(harness.ratio(on.p50_ms, off.p50_ms) or 0, 3),
        "p99_ratio": round(harness.ratio(on.p99_ms, off.p99_ms) or 0, 3),
        "met": overhead is not None and overhead <= TARGET_OVERHEAD,
        "met_by_cpu": cpu_overhead is not None and cpu_overhead <= TARGET_OVERHEAD,
    }


def summarize(
    backend: str, cells: dict[tuple[str, str], harness.Cell], facts: dict[str, Any]
) -> Any:
    rows = []
    for (workload, name), cell in cells.items():
        rows.append(
            {
                "backend": backend,
                "workload": workload,
                "target": name,
                **harness.load_figures(cell),
                **harness.busy_figures(cell),
                "rounds": harness.round_figures(cell),
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


def table_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [
        [r["backend"], r["workload"], r["target"], *harness.load_columns(r)]
        for run in data["runs"]
        for r in run["results"]
    ]


def comparison_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    rows: list[list[report.Cell]] = []
    for run in data["runs"]:
        for workload, c in run["comparison"].items():
            rows.append(
                [run["backend"], workload, harness.pct(c["overhead_throughput"]),
                 harness.pct(c["overhead_throughput_median_round"]), harness.pct(c["overhead_cpu"]),
                 harness.pct(c["overhead_cpu_median_round"]), c["extra_cpu_us_per_request"],
                 c["p50_ratio"], c["p99_ratio"], f"≤ {TARGET_OVERHEAD:.0%}"]
            )  # fmt: skip
    return rows


def verdict_text(data: dict[str, Any]) -> str:
    parts = []
    for run in data["runs"]:
        for workload, c in run["comparison"].items():
            parts.append(
                f"{run['backend']} {workload}: {harness.pct(c['overhead_throughput'])} req/s "
                f"({'met' if c['met'] else 'NOT met'}), {harness.pct(c['overhead_cpu'])} CPU "
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
        harness.machine_line(env),
        harness.generator_line(s),
        f"{s['duration_s_per_round']} s per target, workload and round, {s['rounds']} "
        f"alternating rounds after {s['warmup_s']} s warm-up; `santinel demo --patients "
        f"{s['patients']}` copied into one store per server; {facts}.",
        "",
        f"`audit on`: `santinel serve` (audit_flush_reads={str(s['audit_flush_reads']).lower()})."
        " `audit off`: the same app and arguments with the audit trail disconnected "
        "(`bench/noaudit_app.py`).",
        "",
        report.markdown_table(HEADERS, table_rows(data)),
        report.markdown_table(COMPARISON_HEADERS, comparison_rows(data)),
        "Overhead = extra cost per audited request: off req/s ÷ on req/s - 1 and on CPU "
        "µs/req ÷ off CPU µs/req - 1, over all rounds and as the median round.",
        "",
        verdict_text(data),
    ]
    return "\n".join(lines) + "\n"


def run_backend(backend: str, args: argparse.Namespace, load: harness.LoadSetup) -> dict[str, Any]:
    server_cpu = load.server_cpu
    env = harness.clean_env()
    if args.flush_reads:  # the stronger durability: an fsync per group commit of read events
        env["SANTINEL_AUDIT_FLUSH_READS"] = "true"
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="santinel-auditbench-")))
        started = time.perf_counter()
        on_store, off_store, client = stack.enter_context(stores(backend, tmp, args.patients, env))
        report.console.print(
            f"{backend}: {args.patients} demo patients loaded and copied in "
            f"{time.perf_counter() - started:.0f} s"
        )
        command = harness.santinel_command(harness.free_port(), on_store)
        on = harness.start_process(ON, command, env, tmp / "on.log", server_cpu, args.nice)
        stack.callback(on.stop)
        command = harness.bench_app_command("bench.noaudit_app", harness.free_port(), off_store)
        off = harness.start_process(OFF, command, env, tmp / "off.log", server_cpu, args.nice)
        stack.callback(off.stop)
        servers = {ON: on, OFF: off}
        for server in servers.values():
            server.authorization = harness.bearer(server, client)
        ids = patient_ids(on)
        if not ids:
            raise RuntimeError("no patient loaded")
        paths = {
            "read": [f"/fhir/Patient/{i}" for i in ids],
            "search": [f"/fhir/Observation?subject=Patient/{i}&_count=20" for i in ids],
        }
        facts = check_servers(servers, paths)
        plan = harness.Plan(
            args.duration, args.warmup, args.rounds, args.concurrency, load.generator_cpu,
            load.use_wrk, tmp / "load", args.nice,
        )  # fmt: skip
        cells = measure(servers, paths, client, plan)
        return summarize(backend, cells, facts)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = harness.cli_parser(__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    harness.add_load_options(
        parser, duration=5, rounds=6, patients=200, patients_help="demo patients loaded first"
    )
    parser.add_argument("--python-generator", action="store_true", help="never use wrk")
    parser.add_argument("--nice", type=int, default=0, help="priority change for the processes")
    parser.add_argument("--output", default="audit", help="results name in bench/results")
    parser.add_argument(
        "--flush-reads",
        action="store_true",
        help="serve with audit_flush_reads=true (an fsync per group commit of read events)",
    )
    args = parser.parse_args(argv)
    args.duration = min(max(args.duration, 1), 60)  # a round's two tokens must outlive it
    args.rounds = min(max(args.rounds, 1), 20)
    args.patients = min(max(args.patients, 1), 1000)
    cores = harness.choose_cores()
    pinning = harness.pinning_text(cores, "both servers", "no pinning (fewer than 2 usable cores)")
    load = harness.prepare_load(
        python_generator=args.python_generator, pinning=pinning, cores=cores
    )
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    runs = [run_backend(backend, args, load) for backend in backends]
    data = {
        "benchmark": "audit",
        "environment": report.environment(),
        "settings": {
            "duration_s_per_round": args.duration,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "patients": args.patients,
            "generator": load.generator,
            "pinning": pinning,
            "audit_flush_reads": args.flush_reads,
        },
        "runs": runs,
    }
    tables = [
        ("Audit on vs off", HEADERS, table_rows(data)),
        ("Audit overhead", COMPARISON_HEADERS, comparison_rows(data)),
    ]
    report.publish(args.output, data, to_markdown(data), tables, verdict_text(data))
    return data


if __name__ == "__main__":
    main()
