"""What token verification costs on a read by id: the real server side by side with the same app
given a pre-verified principal (issue 5: overhead ≤ 15 %).

    python -m bench.auth_overhead [--duration S] [--rounds N] [--concurrency C] [--patients N]

Two server processes on ONE SQLite data directory (realistic patients loaded first through a
third server, stopped before both start, so that they start alike):

- `secured`: `santinel serve`, the normal server: every request's `Authorization: Bearer …` is
  verified (signature, `typ`, issuer, audience, expiry; then revocation and client state) and
  turned into a principal, and the policy checks that principal;
- `preverified`: `python -m bench.preverified_app serve …`, i.e. `santinel serve` with the same
  arguments whose app (the very same app) gets an authenticator returning the principal of the
  same token without looking at it; the policy still checks every request.

Both get GET /fhir/Patient/<random loaded id> with the same Accept and Authorization headers,
driven by `wrk` (else the Python generator) in alternating rounds (secured first in odd rounds,
preverified first in even ones) so that a burst of noise hits both alike; both servers are
pinned to the same core and the generator to another (as `bench.core` does). Every round gets a
fresh token from the secured server (tokens live 5 minutes), so the secured server also pays a
full verification per round and a revocation/client-state check every 2 s, as in production.

Overhead = extra cost per request of the secured server: preverified req/s ÷ secured req/s - 1
(throughput) and secured CPU µs/req ÷ preverified CPU µs/req - 1 (server CPU, the least noisy
figure). Results: `bench/results/auth_overhead.{json,md}`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import report
from bench.core import (
    MEDIA,
    Cell,
    Round,
    Server,
    _clean_env,
    choose_cores,
    free_port,
    load_patients,
    santinel_command,
    santinel_launcher,
    start_process,
)
from bench.loadgen import LoadSpec, run_load, wrk_path, wrk_version
from bench.patients import patients

TARGET_OVERHEAD = 0.15  # issue 5: the secured read costs at most 15 % more than a pre-verified one
SCOPE = "system/*.cruds"
SECURED = "secured"
PREVERIFIED = "preverified"
TARGETS = (SECURED, PREVERIFIED)


class TokenSource:
    """A full-access client registered in the store; a fresh access token on demand."""

    def __init__(self, store: list[str], env: dict[str, str]) -> None:
        registered = subprocess.run(
            [*santinel_launcher(), "clients", "add", "--name", "bench-auth", "--scope", SCOPE,
             "--secret", "--json", *store],
            capture_output=True, text=True, check=True, env=env,
        )  # fmt: skip
        client = json.loads(registered.stdout)
        self.credentials = (client["client_id"], client["client_secret"])

    def authorization(self, server: Server) -> str:
        """`Bearer …` with a token from `server`'s token endpoint (for that server)."""
        response = httpx.post(
            f"{server.url}/oauth/token",
            auth=self.credentials,
            data={"grant_type": "client_credentials", "scope": SCOPE},
        )
        response.raise_for_status()
        return f"Bearer {response.json()['access_token']}"


def check_same_answer(servers: dict[str, Server], path: str, authorization: str) -> bytes:
    """Both servers answer the same bytes, status and content type to the same request, and
    both refuse a request without a token (the pre-verified one still applies the policy)."""
    answers = []
    with httpx.Client(headers={"Accept": MEDIA}, timeout=10.0) as client:
        for server in servers.values():
            answer = client.get(server.url + path, headers={"Authorization": authorization})
            anonymous = client.get(server.url + path)
            if answer.status_code != 200 or anonymous.status_code != 401:
                raise RuntimeError(
                    f"{server.name}: {answer.status_code} with the token, "
                    f"{anonymous.status_code} without (expected 200 and 401)"
                )
            answers.append((answer.content, answer.headers["content-type"]))
    if any(a != answers[0] for a in answers):
        raise RuntimeError("the secured and pre-verified servers do not answer the same bytes")
    return answers[0][0]


def measure(
    servers: dict[str, Server],
    paths: list[str],
    tokens: TokenSource,
    *,
    duration: int,
    warmup: int,
    rounds: int,
    concurrency: int,
    generator_cpu: int | None,
    use_wrk: bool,
    workdir: Path,
    nice: int,
) -> dict[str, Cell]:
    cells = {name: Cell(name, "read") for name in servers}
    for index in range(rounds):
        # one fresh token per round, from the secured server, sent to both targets
        authorization = tokens.authorization(servers[SECURED])
        order = list(TARGETS) if index % 2 == 0 else list(reversed(TARGETS))
        for name in order:
            server = servers[name]
            spec = LoadSpec(
                url=server.url,
                method="GET",
                paths=paths,
                body=None,
                duration_s=duration,
                concurrency=concurrency,
                cpu=generator_cpu,
                nice=nice,
                authorization=authorization,
            )
            if index == 0 and warmup > 0:
                warm = LoadSpec(**{**spec.__dict__, "duration_s": warmup})
                run_load(warm, workdir, use_wrk=use_wrk)
            before = server.cpu_seconds()
            result = run_load(spec, workdir, use_wrk=use_wrk)
            cells[name].rounds.append(Round(result, server.cpu_seconds() - before))
            cpu = cells[name].rounds[-1].server_cpu_s / max(result.requests, 1) * 1e6
            report.console.print(
                f"  round {index + 1}/{rounds} {name:<12} {result.rps:>9,.0f} req/s  "
                f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                f"CPU {cpu:6.0f} µs/req  errors {result.errors}"
            )
    return cells


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def summarize(cells: dict[str, Cell], settings: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for name in TARGETS:
        cell = cells[name]
        cpu = cell.cpu_us_per_request
        rows.append(
            {
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
    secured, pre = cells[SECURED], cells[PREVERIFIED]
    throughput_ratio = _ratio(secured.rps, pre.rps)
    cpu_ratio = _ratio(pre.cpu_us_per_request, secured.cpu_us_per_request)
    # each round's pair (measured back to back) gives its own overhead: their median resists
    # a burst of noise that hit one round
    pairs = [(a, b) for a, b in zip(secured.rounds, pre.rounds, strict=True)]
    paired = [b.load.rps / a.load.rps - 1 for a, b in pairs if a.load.rps]
    paired_cpu = [
        (a.server_cpu_s / a.load.requests) / (b.server_cpu_s / b.load.requests) - 1
        for a, b in pairs
        if a.load.requests and b.load.requests and b.server_cpu_s
    ]
    overhead = (1 / throughput_ratio - 1) if throughput_ratio else None
    cpu_overhead = (1 / cpu_ratio - 1) if cpu_ratio else None
    comparison = {
        "throughput_ratio": round(throughput_ratio, 3) if throughput_ratio else None,
        "overhead_throughput": round(overhead, 4) if overhead is not None else None,
        "overhead_throughput_per_round": [round(x, 4) for x in paired],
        "overhead_throughput_median_round": round(statistics.median(paired), 4) if paired else None,
        "cpu_ratio": round(cpu_ratio, 3) if cpu_ratio else None,
        "overhead_cpu": round(cpu_overhead, 4) if cpu_overhead is not None else None,
        "overhead_cpu_per_round": [round(x, 4) for x in paired_cpu],
        "overhead_cpu_median_round": round(statistics.median(paired_cpu), 4)
        if paired_cpu
        else None,
        "p50_ratio": round(_ratio(secured.p50_ms, pre.p50_ms) or 0, 3),
        "p99_ratio": round(_ratio(secured.p99_ms, pre.p99_ms) or 0, 3),
        "target": TARGET_OVERHEAD,
        "met": overhead is not None and overhead <= TARGET_OVERHEAD,
        "met_by_cpu": cpu_overhead is not None and cpu_overhead <= TARGET_OVERHEAD,
    }
    return {
        "benchmark": "auth_overhead",
        "environment": report.environment(),
        "settings": settings,
        "results": rows,
        "comparison": comparison,
    }


HEADERS = (
    "target", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req", "srv CPU", "gen CPU",
)  # fmt: skip
COMPARISON_HEADERS = (
    "measure", "secured ÷ preverified", "overhead (all rounds)", "overhead (median round)",
    "target",
)  # fmt: skip
SATURATED = 0.85  # share of its core a server must use for its throughput to be a ceiling


def table_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    rows: list[list[report.Cell]] = []
    for r in data["results"]:
        row: list[report.Cell] = [
            r["target"], r["rps"], r["p50_ms"], r["p99_ms"], r["errors"],
            r["server_cpu_us_per_request"], f"{r['server_core_busy']:.0%}",
            f"{r['generator_core_busy']:.0%}",
        ]  # fmt: skip
        rows.append(row)
    return rows


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def comparison_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    c = data["comparison"]
    target = f"≤ {c['target']:.0%}"
    cpu_ratio = round(1 / c["cpu_ratio"], 3) if c["cpu_ratio"] else None
    return [
        ["throughput (req/s)", c["throughput_ratio"], _pct(c["overhead_throughput"]),
         _pct(c["overhead_throughput_median_round"]), target],
        ["server CPU per request", cpu_ratio, _pct(c["overhead_cpu"]),
         _pct(c["overhead_cpu_median_round"]), target],
        ["p50 latency", c["p50_ratio"], None, None, None],
        ["p99 latency", c["p99_ratio"], None, None, None],
    ]  # fmt: skip


def verdict_text(data: dict[str, Any]) -> str:
    c = data["comparison"]
    text = (
        f"Token verification overhead on a read by id: {_pct(c['overhead_throughput'])} by "
        f"throughput ({'met' if c['met'] else 'NOT met'}), {_pct(c['overhead_cpu'])} by server "
        f"CPU per request ({'met' if c['met_by_cpu'] else 'NOT met'}); target ≤ "
        f"{c['target']:.0%}."
    )
    busy = min(r["server_core_busy"] for r in data["results"])
    if busy < SATURATED:
        text += (
            f" A server used only {busy:.0%} of its core (other work on the machine took the "
            "rest): throughput figures are noisy, trust the CPU figures and the median round."
        )
    return text


def to_markdown(data: dict[str, Any]) -> str:
    s, env = data["settings"], data["environment"]
    lines = [
        "# Santinel authentication overhead (read by id)",
        "",
        f"{env['date']}, commit {env['commit']}, Python {env['python']}, {env['cpus']} CPUs, "
        f"load average at start {env['load_average_at_start']}.",
        f"Generator: {s['generator']}, {s['concurrency']} connections; {s['pinning']}.",
        f"{s['duration_s_per_round']} s per target in each of {s['rounds']} alternating rounds "
        f"after {s['warmup_s']} s warm-up; {s['patients']} patients loaded (by a third server, "
        f"stopped before measuring) in one SQLite data directory served by both; read body "
        f"{s['read_body_bytes']} B; "
        f"Authorization header {s['authorization_bytes']} B (a fresh token every round).",
        "",
        "`secured`: `santinel serve` (token verified, then policy). `preverified`: the same app "
        "(`bench/preverified_app.py`) given the same token's principal without verifying it "
        "(policy still applied).",
        "",
        report.markdown_table(HEADERS, table_rows(data)),
        report.markdown_table(COMPARISON_HEADERS, comparison_rows(data)),
        "Overhead = extra cost per secured request: preverified req/s ÷ secured req/s - 1, and "
        "secured CPU µs/req ÷ preverified CPU µs/req - 1; over all rounds (requests and CPU "
        "summed) and the median of the rounds (each round measures both back to back).",
        "",
        "Per round, by throughput: "
        + ", ".join(_pct(x) for x in data["comparison"]["overhead_throughput_per_round"])
        + "; by CPU: "
        + ", ".join(_pct(x) for x in data["comparison"]["overhead_cpu_per_round"])
        + ".",
        "",
        verdict_text(data),
    ]
    return "\n".join(lines) + "\n"


def run(
    *,
    duration: int,
    warmup: int,
    rounds: int,
    concurrency: int,
    patient_count: int,
    python_generator: bool,
    nice: int,
) -> dict[str, Any]:
    server_cpu, generator_cpu = choose_cores()
    use_wrk = wrk_path() is not None and not python_generator
    generator = wrk_version() if use_wrk else "python (httpx, uvloop)"
    pinning = (
        f"both servers pinned to core {server_cpu}, load generator to core {generator_cpu}"
        if server_cpu is not None
        else "no pinning (fewer than 2 usable cores or no sched_setaffinity)"
    )
    if nice:
        pinning += f"; servers and generator at nice {nice:+d}"
    if generator_cpu is not None:
        os.sched_setaffinity(0, {generator_cpu})  # this orchestrator sleeps beside the generator
    report.console.print(f"load generator: {generator}; {pinning}")
    env = _clean_env()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="santinel-authbench-")))
        store = ["--data-dir", str(tmp / "sqlite")]
        tokens = TokenSource(store, env)
        # A third server loads the data and stops: the two measured servers start alike, fresh
        # on the same database (neither carries the loading's heap, caches or connections).
        with contextlib.ExitStack() as loading:
            loader = start_process(
                "loader", santinel_command(free_port(), store), env, tmp / "loader.log", None
            )
            loading.callback(loader.stop)
            loader.authorization = tokens.authorization(loader)
            started = time.perf_counter()
            bodies = [orjson.dumps(p) for p in patients(patient_count, seed=42)]
            ids = load_patients(loader, bodies)
            report.console.print(
                f"loaded {len(ids)} patients in {time.perf_counter() - started:.1f} s"
            )
        secured = start_process(
            SECURED, santinel_command(free_port(), store), env, tmp / "secured.log",
            server_cpu, nice,
        )  # fmt: skip
        stack.callback(secured.stop)
        secured.authorization = tokens.authorization(secured)
        # `santinel serve` with the very same arguments, its app swapped (bench/preverified_app.py)
        serve_args = santinel_command(free_port(), store)[len(santinel_launcher()) :]
        command = [sys.executable, "-m", "bench.preverified_app", *serve_args]
        pre_env = {**env, "BENCH_PREVERIFIED_TOKEN": secured.authorization}
        preverified = start_process(
            PREVERIFIED, command, pre_env, tmp / "preverified.log", server_cpu, nice
        )
        stack.callback(preverified.stop)
        servers = {SECURED: secured, PREVERIFIED: preverified}
        paths = [f"/fhir/Patient/{i}" for i in ids]
        sample = check_same_answer(servers, paths[0], secured.authorization)
        cells = measure(
            servers,
            paths,
            tokens,
            duration=duration,
            warmup=warmup,
            rounds=rounds,
            concurrency=concurrency,
            generator_cpu=generator_cpu,
            use_wrk=use_wrk,
            workdir=tmp / "load",
            nice=nice,
        )
    return summarize(
        cells,
        {
            "duration_s_per_round": duration,
            "rounds": rounds,
            "warmup_s": warmup,
            "concurrency": concurrency,
            "patients": patient_count,
            "read_body_bytes": len(sample),
            "authorization_bytes": len(secured.authorization or ""),
            "generator": generator,
            "pinning": pinning,
        },
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per target and round")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds (first round)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections")
    parser.add_argument("--patients", type=int, default=1000, help="patients loaded first")
    parser.add_argument(
        "--python-generator", action="store_true", help="use the Python generator even if wrk"
    )
    parser.add_argument(
        "--nice", type=int, default=0, help="priority change for servers and generator"
    )
    parser.add_argument("--output", default="auth_overhead", help="results name in bench/results")
    args = parser.parse_args(argv)
    data = run(
        duration=min(max(args.duration, 1), 120),  # one token serves a round: it lives 5 min
        warmup=min(max(args.warmup, 0), 30),
        rounds=min(max(args.rounds, 1), 20),
        concurrency=min(max(args.concurrency, 1), 1024),
        patient_count=min(max(args.patients, 1), 100_000),
        python_generator=args.python_generator,
        nice=min(max(args.nice, -20), 19),
    )
    report.print_table("Read by id: secured vs pre-verified principal", HEADERS, table_rows(data))
    report.print_table("Authentication overhead", COMPARISON_HEADERS, comparison_rows(data))
    report.console.print(verdict_text(data))
    report.write_results(args.output, data, to_markdown(data))
    return data


if __name__ == "__main__":
    main()
