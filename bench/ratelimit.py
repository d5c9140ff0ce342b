"""What rate limiting costs per request: the same read with limiting off, with buckets in memory
and with buckets in Redis, side by side in one run, as ratios (issue 6).

    python -m bench.ratelimit [--duration S] [--rounds N] [--concurrency C] [--patients N]

Three `santinel serve` processes on ONE SQLite data directory (realistic patients loaded first
through a fourth server, stopped before the three start), all pinned to the same core, the load
generator (`wrk`, else the Python generator) on another:

- `off`: `SANTINEL_RATE_LIMIT_ENABLED=false` — no bucket, no RateLimit fields;
- `memory`: the default, buckets in the process's memory;
- `redis`: `--redis-url redis://127.0.0.1:6379/0`, every request one Lua script in Redis (its
  keys under a prefix of this run, deleted afterwards). Redis itself is not pinned.

Every target gets GET /fhir/Patient/<random loaded id> with the same full-access token of a
client whose own limit (`--rate-limit 1000000000/second`) never refuses, so limited targets do
all the work of limiting and none of refusing. Rounds alternate the order of targets. Cost =
extra server CPU per request and throughput ratio against `off`. Results:
`bench/results/ratelimit.{json,md}`.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench import harness, report
from bench.loadgen import wrk_path, wrk_version
from bench.patients import patients

REDIS_URL = "redis://127.0.0.1:6379/0"
TARGETS = ("off", "memory", "redis")
NEVER_REFUSED = "1000000000/second"


def plain_http() -> list[str]:
    """`--http` where `santinel serve` defaults to HTTPS (the benchmark stays on loopback)."""
    shown = subprocess.run(
        [*harness.santinel_launcher(), "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    return ["--http"] if "--http" in shown.stdout else []


def register(store: list[str], env: dict[str, str]) -> tuple[str, str]:
    """A client whose own limit never refuses: limited targets do all the work of limiting."""
    return harness.register_client("bench-ratelimit", store, env, "--rate-limit", NEVER_REFUSED)


def start(
    name: str, store: list[str], env: dict[str, str], log: Path, cpu: int | None
) -> harness.Server:
    command = [*harness.santinel_command(harness.free_port(), store), *plain_http()]
    return harness.start_process(name, command, env, log, cpu)


def target_env(name: str, base: dict[str, str], prefix: str) -> tuple[dict[str, str], list[str]]:
    if name == "off":
        return {**base, "SANTINEL_RATE_LIMIT_ENABLED": "false"}, []
    if name == "redis":
        return {**base, "SANTINEL_REDIS_PREFIX": prefix}, ["--redis-url", REDIS_URL]
    return dict(base), []


def measure(
    servers: dict[str, harness.Server],
    paths: list[str],
    credentials: tuple[str, str],
    plan: harness.Plan,
) -> dict[str, harness.Cell]:
    cells = {name: harness.Cell(name, "read") for name in servers}
    for index in range(plan.rounds):
        for name in harness.alternate(TARGETS, index):
            server, cell = servers[name], cells[name]
            token = harness.bearer(server, credentials)  # each server's own audience
            result = plan.measure(index, cell, server, plan.spec(server, paths, token))
            cpu = cell.rounds[-1].cpu_us_per_request
            harness.progress(index, plan.rounds, f"{name:<7}", result, cpu_us=cpu)
    return cells


def summarize(cells: dict[str, harness.Cell], settings: dict[str, Any]) -> dict[str, Any]:
    off = cells["off"]
    rows = []
    for name in TARGETS:
        cell = cells[name]
        cpu, base_cpu = cell.cpu_us_per_request, off.cpu_us_per_request
        rows.append(
            {
                "target": name,
                **harness.load_figures(cell),
                "rps_vs_off": round(cell.rps / off.rps, 3) if off.rps else None,
                "extra_cpu_us_per_request": round(cpu - base_cpu, 1) if cpu and base_cpu else None,
                "cpu_vs_off": round(cpu / base_cpu, 3) if cpu and base_cpu else None,
                "p50_vs_off": round(cell.p50_ms / off.p50_ms, 3) if off.p50_ms else None,
                "rounds": harness.round_figures(cell),
            }
        )
    return report.result_data("ratelimit", settings, rows)


HEADERS = (
    "target", "req/s", "x off req/s", "p50 ms", "p99 ms", "CPU µs/req", "extra CPU µs/req",
    "x off CPU", "errors",
)  # fmt: skip


def table_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [
        [r["target"], r["rps"], r["rps_vs_off"], r["p50_ms"], r["p99_ms"],
         r["server_cpu_us_per_request"], r["extra_cpu_us_per_request"], r["cpu_vs_off"],
         r["errors"]]
        for r in data["results"]
    ]  # fmt: skip


def markdown(data: dict[str, Any]) -> str:
    env, s = data["environment"], data["settings"]
    return "\n".join(
        [
            "# Rate limiting: cost per request (read by id, SQLite)",
            "",
            f"{env.get('machine', '')}, load average at start {env.get('load_average_at_start')}; "
            f"generator {s['generator']}; {s['rounds']} rounds x {s['duration_s']} s per "
            f"target, {s['concurrency']} connections, {s['patients']} patients.",
            "",
            report.markdown_table(HEADERS, table_rows(data)),
            "",
            "`off`: rate limiting disabled; `memory`: buckets in the server's memory; `redis`: "
            "one Lua script per request in a local Redis. `x off`: ratio to `off` in the same "
            "run; `extra CPU µs/req`: server CPU per request above `off` (Redis's own CPU not "
            "counted).",
            "",
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--patients", type=int, default=200)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    server_cpu, generator_cpu = harness.choose_cores()
    prefix = f"santinel-bench-{uuid.uuid4().hex[:10]}:"
    base_env = harness.clean_env()
    with tempfile.TemporaryDirectory(prefix="santinel-bench-ratelimit-") as tmp:
        workdir = Path(tmp)
        store = ["--data-dir", str(workdir / "data")]
        credentials = register(store, base_env)
        loader = start("loader", store, base_env, workdir / "loader.log", server_cpu)
        try:
            loader.authorization = harness.bearer(loader, credentials)
            ids = harness.load_patients(
                loader, [orjson.dumps(p) for p in patients(args.patients, seed=6)]
            )
        finally:
            loader.stop()
        paths = [f"/fhir/Patient/{i}" for i in ids]
        servers: dict[str, harness.Server] = {}
        try:
            for name in TARGETS:
                env, extra = target_env(name, base_env, prefix)
                servers[name] = start(
                    name, [*store, *extra], env, workdir / f"{name}.log", server_cpu
                )
            plan = harness.Plan(
                args.duration, args.warmup, args.rounds, args.concurrency, generator_cpu,
                wrk_path() is not None, workdir,
            )  # fmt: skip
            cells = measure(servers, paths, credentials, plan)
        finally:
            for server in servers.values():
                server.stop()
            _clean_redis(prefix)
    settings = {
        "duration_s": args.duration,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "patients": args.patients,
        "generator": f"wrk {wrk_version()}" if wrk_path() else "python",
        "server_core": server_cpu,
        "generator_core": generator_cpu,
    }
    data = summarize(cells, settings)
    tables = [("Rate limiting: cost per read", HEADERS, table_rows(data))]
    report.publish("ratelimit", data, markdown(data), tables)


def _clean_redis(prefix: str) -> None:
    import redis

    with contextlib.suppress(redis.RedisError):
        connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        for key in connection.scan_iter(match=f"{prefix}*"):
            connection.delete(key)
        connection.close()


if __name__ == "__main__":
    main()
