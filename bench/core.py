"""Core HTTP workloads against the real server, side by side with a floor, as ratios.

    python -m bench.core [--backend sqlite|postgres|both] [--duration S] [--concurrency C]

One run starts `santinel serve` (a subprocess, loopback, a fresh SQLite data dir in a temporary
directory and/or a fresh PostgreSQL database created and dropped here) and the FLOOR
(`bench/floor.py`: a bare Starlette handler under the same uvicorn settings returning the bytes of
one real Patient read). It loads ~1,000 realistic patients, then measures, alternating targets in
rounds so that a noisy neighbour hits every target alike:

- read:   GET /fhir/Patient/<random id of the loaded set>  (floor: the same paths, same bytes)
- create: POST /fhir/Patient with a realistic Patient      (floor: 201 with the same bytes)

The load generator is `wrk` when installed (else a Python/httpx generator), in its own process.
With two or more cores, servers are pinned to one core and the generator to another.
"""

from __future__ import annotations

import contextlib
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import harness, report
from bench.patients import patient, patients

READ_TARGET_RATIO = 0.40  # read by id on SQLite: at least 40 % of the floor's throughput
FLOOR_SATURATED = 0.85  # share of its core the floor must use for its throughput to be a ceiling
FLOOR = "floor"


def obtain_authorization(server: harness.Server, store: list[str], env: dict[str, str]) -> str:
    """Register a full-access client in the server's store and get a token (valid 5 minutes,
    longer than a default run)."""
    return harness.bearer(server, harness.register_client("bench", store, env))


def authorize_and_load(
    server: harness.Server, store: list[str], env: dict[str, str], bodies: Sequence[bytes]
) -> list[str]:
    """Give `server` a full-access token (`obtain_authorization`), load `bodies` through it; the
    read paths of the patients created."""
    server.authorization = obtain_authorization(server, store, env)
    started = time.perf_counter()
    ids = harness.load_patients(server, bodies)
    elapsed = time.perf_counter() - started
    report.console.print(f"{server.name}: {len(ids)} patients loaded in {elapsed:.1f} s")
    return [f"/fhir/Patient/{i}" for i in ids]


def start_floor(
    tmp: Path,
    server: harness.Server,
    path: str,
    sample: bytes,
    env: dict[str, str],
    cpu: int | None,
    nice: int,
) -> harness.Server:
    """The floor (`bench/floor.py`) returning `sample`, the bytes `server` answers at `path`,
    checked to answer exactly that; the caller stops it."""
    body_file = tmp / "floor-body.json"
    body_file.write_bytes(sample)
    floor_command = [
        sys.executable, "-m", "bench.floor", "--port", str(harness.free_port()),
        "--body-file", str(body_file),
    ]  # fmt: skip
    floor = harness.start_process(FLOOR, floor_command, env, tmp / "floor.log", cpu, nice)
    try:
        check_same_answer(floor, server, path, sample)
    except BaseException:
        floor.stop()
        raise
    return floor


def check_same_answer(
    floor: harness.Server, server: harness.Server, path: str, expected: bytes
) -> None:
    """The floor must answer exactly what Santinel answers (bytes and content type)."""
    with httpx.Client(headers={"Accept": harness.MEDIA}, timeout=10.0) as client:
        real = client.get(server.url + path, headers=harness.auth_headers(server))
        bare = client.get(floor.url + path)
    if real.content != expected or bare.content != expected:
        raise RuntimeError("the floor and Santinel do not return the same bytes")
    if real.headers["content-type"] != bare.headers["content-type"]:
        types = (real.headers["content-type"], bare.headers["content-type"])
        raise RuntimeError(f"content types differ: {types}")


# -- measurements -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    method: str
    body: bytes | None
    paths: list[str] | None = None  # the same for every target; None: each target's own paths


def measure(
    servers: dict[str, harness.Server],
    paths: dict[str, list[str]],
    workloads: Sequence[Workload],
    plan: harness.Plan,
    *,
    widths: tuple[int, int] = (6, 18),
    p99: bool = True,
) -> dict[tuple[str, str], harness.Cell]:
    """Every workload on every target in each round, targets in rotating order. `widths` and
    `p99`: the shape of the progress lines."""
    cells = {(t, w.name): harness.Cell(t, w.name) for w in workloads for t in servers}
    for index in range(plan.rounds):
        for workload in workloads:
            for target in harness.rotate(list(servers), index):
                server = servers[target]
                spec = plan.spec(
                    server, workload.paths or paths[target], server.authorization,
                    method=workload.method, body=workload.body,
                )  # fmt: skip
                result = plan.measure(index, cells[(target, workload.name)], server, spec)
                labels = f"{workload.name:<{widths[0]}} {target:<{widths[1]}}"
                harness.progress(index, plan.rounds, labels, result, p99=p99)
    return cells


# -- the run ------------------------------------------------------------------------------------


def run(
    backends: Sequence[str],
    o: harness.Options,
) -> dict[str, Any]:
    cores = harness.choose_cores()
    pinning = harness.with_nice(harness.pinning_text(cores), o.nice)
    load = harness.prepare_load(python_generator=o.python_generator, pinning=pinning, cores=cores)
    server_cpu = load.server_cpu
    harness.announce(load)
    if not load.use_wrk:
        report.console.print(
            "[yellow]wrk not used: the Python generator may cap the floor "
            "(see gen CPU); `apt-get install -y wrk` for exact ratios[/yellow]"
        )
    bodies = [orjson.dumps(p) for p in patients(o.patients, seed=42)]
    create_body = orjson.dumps(patient(random.Random(7), 10**6))
    env_base = harness.clean_env()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="santinel-bench-")))
        servers: dict[str, harness.Server] = {}
        paths: dict[str, list[str]] = {}
        sizes: dict[str, float] = {}
        for backend in backends:
            name = f"santinel-{backend}"
            if backend == "sqlite":
                store = ["--data-dir", str(tmp / "sqlite")]
            else:
                store = ["--database-url", stack.enter_context(harness.postgres_database())]
            command = harness.santinel_command(harness.free_port(), store)
            server = harness.start_process(
                name, command, env_base, tmp / f"{name}.log", server_cpu, o.nice
            )
            stack.callback(server.stop)
            servers[name], paths[name] = server, authorize_and_load(server, store, env_base, bodies)
        first = next(iter(servers.values()))
        sample_path = paths[first.name][0]
        with httpx.Client(headers={"Accept": harness.MEDIA}, timeout=10.0) as client:
            sample = client.get(
                first.url + sample_path, headers=harness.auth_headers(first)
            ).content
        floor = start_floor(tmp, first, sample_path, sample, env_base, server_cpu, o.nice)
        stack.callback(floor.stop)
        targets = {FLOOR: floor, **servers}
        paths[FLOOR] = paths[first.name]
        workloads = [
            Workload("read", "GET", None),
            Workload("create", "POST", create_body, ["/fhir/Patient"]),
        ]
        per_round = max(1, round(o.duration / o.rounds))  # `--duration` is split over the rounds
        plan = harness.Plan.of(o, load, tmp / "load", per_round)
        cells = measure(targets, paths, workloads, plan)
        rss = {name: s.peak_rss_mb() for name, s in targets.items()}
        if "sqlite" in backends:
            sizes["santinel-sqlite"] = sum(
                f.stat().st_size for f in (tmp / "sqlite").rglob("*") if f.is_file()
            ) / (1024 * 1024)
    return summarize(
        cells,
        workloads,
        list(targets),
        rss,
        sizes,
        settings={
            "backends": list(backends),
            "duration_s_per_workload": o.duration,
            "rounds": o.rounds,
            "warmup_s": o.warmup,
            "concurrency": o.concurrency,
            "patients": o.patients,
            "read_body_bytes": len(sample),
            "create_body_bytes": len(create_body),
            "generator": load.generator,
            "pinning": pinning,
        },
    )


def summarize(
    cells: dict[tuple[str, str], harness.Cell],
    workloads: Sequence[Workload],
    targets: Sequence[str],
    rss: dict[str, float | None],
    sizes: dict[str, float],
    settings: dict[str, Any],
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for workload in workloads:
        floor = cells[(FLOOR, workload.name)]
        for target in targets:
            cell = cells[(target, workload.name)]
            floor_cpu, cpu = floor.cpu_us_per_request, cell.cpu_us_per_request
            rows.append(
                {
                    "workload": workload.name,
                    "target": target,
                    **harness.load_figures(cell),
                    **harness.busy_figures(cell),
                    "throughput_ratio": round(cell.rps / floor.rps, 3) if floor.rps else None,
                    "p50_ratio": round(cell.p50_ms / floor.p50_ms, 2) if floor.p50_ms else None,
                    "p99_ratio": round(cell.p99_ms / floor.p99_ms, 2) if floor.p99_ms else None,
                    "cpu_ratio": round(floor_cpu / cpu, 3) if floor_cpu and cpu else None,
                    "rounds": harness.round_figures(cell),
                }
            )
    target_row = next(
        (r for r in rows if r["workload"] == "read" and r["target"] == "santinel-sqlite"), None
    )
    floor_read = next(r for r in rows if r["workload"] == "read" and r["target"] == FLOOR)
    verdict = None
    if target_row and target_row["throughput_ratio"] is not None:
        saturated = floor_read["server_core_busy"] >= FLOOR_SATURATED
        verdict = {
            "read_sqlite_throughput_ratio": target_row["throughput_ratio"],
            "read_sqlite_cpu_ratio": target_row["cpu_ratio"],
            "floor_core_busy": floor_read["server_core_busy"],
            "floor_saturated": saturated,
            "target": READ_TARGET_RATIO,
            "met": target_row["throughput_ratio"] >= READ_TARGET_RATIO,
            "met_by_cpu": (target_row["cpu_ratio"] or 0) >= READ_TARGET_RATIO,
        }
    return report.result_data(
        "core",
        settings,
        rows,
        peak_rss_mb={k: round(v, 1) if v else None for k, v in rss.items()},
        sqlite_disk_mb={k: round(v, 2) for k, v in sizes.items()},
        read_target=verdict,
    )


HEADERS = (
    "workload", "target", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req",
    "srv CPU", "gen CPU", "x floor req/s", "x floor p50", "x floor p99", "floor CPU / CPU",
)  # fmt: skip


def table_row(r: dict[str, Any]) -> list[report.Cell]:
    return [
        r["workload"], r["target"], *harness.load_columns(r),
        r["throughput_ratio"], r["p50_ratio"], r["p99_ratio"], r["cpu_ratio"],
    ]  # fmt: skip


def table_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [table_row(r) for r in data["results"]]


def to_markdown(data: dict[str, Any]) -> str:
    s, env = data["settings"], data["environment"]
    lines = [
        "# Santinel core benchmark",
        "",
        harness.machine_line(env),
        harness.generator_line(s),
        f"{s['duration_s_per_workload']} s per workload and target in {s['rounds']} alternating "
        f"rounds after {s['warmup_s']} s warm-up; {s['patients']} patients loaded; read body "
        f"{s['read_body_bytes']} B, create body {s['create_body_bytes']} B.",
        "",
        report.markdown_table(HEADERS, table_rows(data)),
        f"Peak RSS (MB): {data['peak_rss_mb']}. SQLite on disk (MB): {data['sqlite_disk_mb']}.",
        "",
    ]
    if data["read_target"]:
        lines.append(verdict_text(data["read_target"]))
    return "\n".join(lines) + "\n"


def verdict_text(verdict: dict[str, Any]) -> str:
    target = f"target ≥ {verdict['target']:.0%}"
    text = (
        f"Read by id on SQLite: {verdict['read_sqlite_throughput_ratio']:.0%} of the floor's "
        f"throughput ({target}: {'met' if verdict['met'] else 'NOT met'}); CPU ratio "
        f"{(verdict['read_sqlite_cpu_ratio'] or 0):.0%} ({target}: "
        f"{'met' if verdict['met_by_cpu'] else 'NOT met'})."
    )
    if not verdict["floor_saturated"]:
        text += (
            f" The floor used only {verdict['floor_core_busy']:.0%} of its core (the machine was "
            "busy): its throughput is understated, so trust the CPU ratio."
        )
    return text


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = harness.cli_parser(__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    harness.add_load_options(
        parser,
        duration=10,
        rounds=2,
        patients=1000,
        duration_help="measured seconds per workload and target",
    )
    parser.add_argument(
        "--python-generator", action="store_true", help="use the Python generator even if wrk"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="priority change for servers and generator (e.g. -5 on a busy shared machine)",
    )
    parser.add_argument("--output", help="results name in bench/results (default core-BACKEND)")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    options = harness.bounded_options(args, max_duration=600, max_warmup=60, max_rounds=10)
    data = run(backends, options)
    report.publish(
        args.output or f"core-{args.backend}",
        data,
        to_markdown(data),
        [("Santinel core benchmark (ratios to the floor)", HEADERS, table_rows(data))],
        verdict_text(data["read_target"]) if data["read_target"] else None,
    )
    return data


if __name__ == "__main__":
    main()
