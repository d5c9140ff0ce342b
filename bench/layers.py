"""Where an audited, encrypted, authenticated read by id spends its CPU: the same read on a ladder
of servers, from the bare FHIR core to the full `santinel serve`, side by side with the floor.

    python -m bench.layers [--duration S] [--rounds N] [--concurrency C] [--patients N]
                           [--nice N] [--python-generator]

Rungs (each adds one layer to the one above; `bench/layers_app.py` switches the others off):

- `floor`: the bare Starlette handler of `bench.core` returning the same bytes;
- `core`: the FHIR server (routing, negotiation, request model, policy, SQLite point read,
  response, request log) with encryption, audit, token verification and rate limiting off;
- `+encryption`: bodies sealed under per-patient keys (AES-256-GCM, opened on read);
- `+audit`: the hash-chained, sealed audit trail (one AuditEvent per read, group-committed);
- `+auth`: the bearer token verified on every request (`santinel serve` with rate limiting off);
- `full`: `santinel serve` as shipped (rate limiting on).

Each server has its own SQLite data directory, loaded with the same patients through itself.
Before measuring, the run checks that every rung serves a read of the same size, that only the
rungs with the audit trail hold AuditEvents and only `full` sends RateLimit fields. All
servers are pinned to one core, the generator (`wrk`, else the Python one) to another; rounds
alternate in rotating order. Per rung: requests/s and CPU per request, their ratios to the
floor (issue 2's target: read by id ≥ 40 % of the floor's throughput on SQLite) and the CPU the
rung adds to the one above. Results: `bench/results/layers.{json,md}`.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import harness, report
from bench.core import (
    FLOOR,
    READ_TARGET_RATIO,
    Workload,
    authorize_and_load,
    measure,
    start_floor,
)
from bench.patients import patients

# (rung, layers switched off in bench/layers_app.py, rate limiting on); None: `santinel serve`
RUNGS: tuple[tuple[str, str | None, bool], ...] = (
    ("core", "encryption,audit,auth", False),
    ("+encryption", "audit,auth", False),
    ("+audit", "auth", False),
    ("+auth", None, False),
    ("full", None, True),
)
FULL = "full"


def command(rung: tuple[str, str | None, bool], port: int, store: list[str]) -> list[str]:
    _, off, _ = rung
    if off is None:
        return harness.santinel_command(port, store)
    return harness.bench_app_command("bench.layers_app", port, store)


def environment(rung: tuple[str, str | None, bool], base: dict[str, str]) -> dict[str, str]:
    _, off, limited = rung
    env = dict(base)
    if off is not None:
        env["BENCH_LAYERS_OFF"] = off
    if not limited:
        env["SANTINEL_RATE_LIMIT_ENABLED"] = "false"
    return env


def has_audit_events(http: httpx.Client, server: harness.Server) -> bool:
    headers = harness.auth_headers(server)
    found = http.get(f"{server.url}/fhir/AuditEvent", params={"_count": "1"}, headers=headers)
    found.raise_for_status()
    return bool(found.json().get("entry"))


def run(o: harness.Options) -> dict[str, Any]:
    cores = harness.choose_cores()
    pinning = harness.with_nice(harness.pinning_text(cores), o.nice)
    load = harness.prepare_load(python_generator=o.python_generator, pinning=pinning, cores=cores)
    harness.announce(load)
    base_env = harness.clean_env()
    bodies = [orjson.dumps(p) for p in patients(o.patients, seed=42)]
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="santinel-layers-")))
        servers: dict[str, harness.Server] = {}
        paths: dict[str, list[str]] = {}
        for rung in RUNGS:
            name = rung[0]
            store = ["--data-dir", str(tmp / name.strip("+"))]
            env = environment(rung, base_env)
            server = harness.start_process(
                name,
                command(rung, harness.free_port(), store),
                env,
                tmp / f"{name.strip('+')}.log",
                load.server_cpu,
                o.nice,
            )
            stack.callback(server.stop)
            servers[name], paths[name] = server, authorize_and_load(server, store, base_env, bodies)
        full = servers[FULL]
        sample_path = paths[FULL][0]
        with httpx.Client(headers={"Accept": harness.MEDIA}, timeout=10.0) as http:
            sample = http.get(full.url + sample_path, headers=harness.auth_headers(full)).content
            for rung in RUNGS:  # every rung serves a read of the same size, limited or not
                name, off, limited = rung
                server = servers[name]
                answer = http.get(server.url + paths[name][0], headers=harness.auth_headers(server))
                if answer.status_code != 200 or len(answer.content) != len(sample):
                    raise RuntimeError(f"{name} answers {answer.status_code}, not the same read")
                if ("ratelimit" in answer.headers) != limited:
                    raise RuntimeError(f"{name}: rate limiting is not {'on' if limited else 'off'}")
                audited = off is None or "audit" not in off.split(",")
                if audited != has_audit_events(http, server):
                    raise RuntimeError(f"{name}: auditing is not {'on' if audited else 'off'}")
        floor = start_floor(tmp, full, sample_path, sample, base_env, load.server_cpu, o.nice)
        stack.callback(floor.stop)
        targets = {FLOOR: floor, **servers}
        paths[FLOOR] = paths[FULL]
        plan = harness.Plan.of(o, load, tmp / "load")
        cells = measure(targets, paths, [Workload("read", "GET", None)], plan, widths=(4, 11))
    return summarize(
        cells,
        list(targets),
        {
            "duration_s": o.duration * o.rounds,  # per target
            "rounds": o.rounds,
            "concurrency": o.concurrency,
            "patients": o.patients,
            "read_body_bytes": len(sample),
            "generator": load.generator,
            "pinning": pinning,
        },
    )


def summarize(
    cells: dict[tuple[str, str], harness.Cell], targets: Sequence[str], settings: dict[str, Any]
) -> dict[str, Any]:
    floor = cells[(FLOOR, "read")]
    full_cpu = cells[(FULL, "read")].cpu_us_per_request
    rows: list[dict[str, Any]] = []
    previous: float | None = None
    for target in targets:
        cell = cells[(target, "read")]
        cpu = cell.cpu_us_per_request
        added = cpu - previous if cpu is not None and previous is not None else None
        rows.append(
            {
                "target": target,
                **harness.load_figures(cell),
                **harness.busy_figures(cell),
                "throughput_ratio": harness.rounded(harness.ratio(cell.rps, floor.rps), 3),
                "cpu_ratio": harness.rounded(harness.ratio(floor.cpu_us_per_request, cpu), 3),
                "added_cpu_us": harness.rounded(added, 1) if target != FLOOR else None,
                "share_of_full_cpu": harness.rounded(
                    harness.ratio(added, full_cpu) if target != FLOOR else None, 3
                ),
                "rounds": harness.round_figures(cell),
            }
        )
        previous = cpu
    return report.result_data("layers", settings, rows, read_target=READ_TARGET_RATIO)


HEADERS = (
    "rung", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req", "srv CPU", "gen CPU",
    "x floor req/s", "floor CPU / CPU", "+CPU µs", "share of full CPU",
)  # fmt: skip


def table_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [table_row(r) for r in data["results"]]


def table_row(r: dict[str, Any]) -> list[report.Cell]:
    share = r["share_of_full_cpu"]
    return [
        r["target"], *harness.load_columns(r), r["throughput_ratio"], r["cpu_ratio"],
        r["added_cpu_us"], harness.pct(share) if share is not None else None,
    ]  # fmt: skip


def verdict_text(data: dict[str, Any]) -> str:
    by_target = {r["target"]: r for r in data["results"]}
    parts = [
        f"{name} {by_target[name]['throughput_ratio']:.0%} (CPU {by_target[name]['cpu_ratio']:.0%})"
        for name in ("core", FULL)
        if by_target[name]["throughput_ratio"] is not None
        and by_target[name]["cpu_ratio"] is not None
    ]
    return (
        f"Read by id, share of the floor's throughput (target ≥ {data['read_target']:.0%}): "
        + "; ".join(parts)
        + "."
    )


def to_markdown(data: dict[str, Any]) -> str:
    s, env = data["settings"], data["environment"]
    lines = [
        "# Santinel read by id, layer by layer",
        "",
        harness.machine_line(env),
        harness.generator_line(s),
        f"{s['duration_s']} s per rung in {s['rounds']} rotating rounds; {s['patients']} patients "
        f"loaded through each server; read body {s['read_body_bytes']} B. Each rung adds one "
        "layer to the one above (`bench/layers.py`).",
        "",
        report.markdown_table(HEADERS, table_rows(data)),
        verdict_text(data),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = harness.cli_parser(__doc__)
    harness.add_load_options(parser, duration=5, rounds=4, patients=200)
    parser.add_argument("--python-generator", action="store_true", help="no wrk even if present")
    parser.add_argument("--nice", type=int, default=0, help="priority change of the processes")
    parser.add_argument("--output", default="layers", help="results name in bench/results")
    args = parser.parse_args(argv)
    data = run(harness.bounded_options(args, max_duration=60, max_warmup=30, max_rounds=20))
    report.publish(
        args.output,
        data,
        to_markdown(data),
        [("Read by id, layer by layer (ratios to the floor)", HEADERS, table_rows(data))],
        verdict_text(data),
    )
    return data


if __name__ == "__main__":
    main()
