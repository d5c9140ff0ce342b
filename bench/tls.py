"""The cost of TLS: `santinel serve` over HTTPS (its default) side by side with the very same
server over plain HTTP (`--http`), in one run, on one SQLite data dir, as ratios.

    python -m bench.tls [--duration S] [--concurrency C] [--rounds N] [--patients N]

Workloads (alternating rounds, so that noise hits both targets alike):

- `read`: GET /fhir/Patient/<random id> with an access token on C kept-alive connections (wrk):
  the steady cost of encrypting a secured read;
- `connect`: GET /healthz on a new connection per request (wrk, `Connection: close`). wrk keeps
  the TLS session between its connections, so over HTTPS this is a *resumed* TLS 1.3 handshake
  (ticket, with a fresh ECDHE exchange, no certificate signature);
- `connect-full-1.3` / `connect-full-1.2`: GET /healthz with a *full* handshake each time
  (`openssl s_time -new`, K clients in parallel): ECDHE plus the server's ECDSA signature. Its
  plain-HTTP reference is the `connect` row of `http`.

`CPU µs/req` (the server process's CPU per request, from /proc) is the figure to read; `+TLS
µs` is what HTTPS adds per request to the same request over HTTP. Needs `wrk` and `openssl`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import report
from bench.core import (
    START_TIMEOUT_S,
    Cell,
    Round,
    Server,
    _clean_env,
    choose_cores,
    free_port,
    load_patients,
    santinel_command,
    santinel_launcher,
)
from bench.loadgen import LoadResult, LoadSpec, pin_to, run_load, wrk_path, wrk_version
from bench.patients import patients

HTTP, HTTPS = "http", "https"
READ, CONNECT = "read", "connect"
FULL = {"connect-full-1.3": "-tls1_3", "connect-full-1.2": "-tls1_2"}
S_TIME_COUNT = re.compile(r"(\d+) connections in [\d.]+ real seconds")


# -- servers ------------------------------------------------------------------------------------
def launch(
    name: str, https: bool, store: list[str], env: dict[str, str], log: Path, cpu: int | None
) -> Server:
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            santinel_command(port, store, https=https),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env=env,
            preexec_fn=pin_to(cpu),
            cwd=Path(__file__).resolve().parent.parent,
        )
    server = Server(name, process, f"{'https' if https else 'http'}://127.0.0.1:{port}", log)
    try:
        wait_ready(server, trust(store) if https else None)
    except BaseException:
        server.stop()
        raise
    return server


def trust(store: list[str]) -> Path:
    """The development CA `santinel serve` creates in its data dir."""
    return Path(store[store.index("--data-dir") + 1]) / "tls" / "ca.pem"


def verify(ca: Path | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=str(ca)) if ca is not None else True


def wait_ready(server: Server, ca: Path | None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{server.name} exited at start:\n{tail}")
        if ca is None or ca.exists():
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(f"{server.url}/readyz", verify=verify(ca), timeout=2.0)
                if answer.status_code == 200:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} was not ready after {START_TIMEOUT_S:.0f} s")


def authorize(server: Server, store: list[str], env: dict[str, str], ca: Path | None) -> str:
    """A full-access token for `server` (its own audience: scheme and port differ)."""
    registered = subprocess.run(
        [*santinel_launcher(), "clients", "add", "--name", "bench-tls", "--scope",
         "system/*.cruds", "--secret", "--json", *store],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    client = json.loads(registered.stdout)
    answer = httpx.post(
        f"{server.url}/oauth/token",
        auth=(client["client_id"], client["client_secret"]),
        data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
        verify=verify(ca),
    )
    answer.raise_for_status()
    return f"Bearer {answer.json()['access_token']}"


# -- full handshakes (openssl s_time) -----------------------------------------------------------
def full_handshakes(
    server: Server, flag: str, seconds: int, clients: int, cpu: int | None
) -> LoadResult:
    """K parallel `openssl s_time -new` clients: every connection a full handshake."""
    port = server.url.rsplit(":", 1)[1]
    command = [
        "openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(seconds),
        "-www", "/healthz", flag,
    ]  # fmt: skip
    before = _children_cpu()
    started = time.perf_counter()
    runs = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            preexec_fn=pin_to(cpu),
        )
        for _ in range(clients)
    ]
    outputs = [run.communicate(timeout=seconds + 60)[0] for run in runs]
    elapsed = time.perf_counter() - started
    counts = [S_TIME_COUNT.search(out) for out in outputs]
    if any(c is None for c in counts):
        raise RuntimeError(f"openssl s_time failed: {outputs}")
    total = sum(int(c.group(1)) for c in counts if c is not None)
    return LoadResult(total, 0, elapsed, 0.0, 0.0, 0.0, 0.0, _children_cpu() - before)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- the run ------------------------------------------------------------------------------------
def run(
    *, duration: int, rounds: int, concurrency: int, patient_count: int, s_time_clients: int
) -> dict[str, Any]:
    if wrk_path() is None or shutil.which("openssl") is None:
        raise SystemExit("bench.tls needs wrk and openssl (apt-get install -y wrk openssl)")
    server_cpu, generator_cpu = choose_cores()
    if generator_cpu is not None:
        os.sched_setaffinity(0, {generator_cpu})
    env = _clean_env()
    per_round = max(1, round(duration / rounds))
    with tempfile.TemporaryDirectory(prefix="santinel-bench-tls-") as folder:
        tmp = Path(folder)
        store = ["--data-dir", str(tmp / "data")]
        servers: dict[str, Server] = {}
        with contextlib.ExitStack() as stack:
            for name, https in ((HTTP, False), (HTTPS, True)):  # one after the other: one schema
                server = launch(name, https, store, env, tmp / f"{name}.log", server_cpu)
                stack.callback(server.stop)
                ca = trust(store) if https else None
                server.authorization = authorize(server, store, env, ca)
                servers[name] = server
            bodies = [orjson.dumps(p) for p in patients(patient_count, seed=42)]
            ids = load_patients(servers[HTTP], bodies)
            paths = [f"/fhir/Patient/{i}" for i in ids]
            cells = measure(servers, paths, per_round, rounds, concurrency, generator_cpu, tmp)
            for name, flag in FULL.items():
                for index in range(rounds):
                    server = servers[HTTPS]
                    before = server.cpu_seconds()
                    result = full_handshakes(server, flag, per_round, s_time_clients, generator_cpu)
                    cell = cells.setdefault((HTTPS, name), Cell(HTTPS, name))
                    cell.rounds.append(Round(result, server.cpu_seconds() - before))
                    _progress(index, rounds, name, HTTPS, result)
    settings = {
        "duration_s_per_workload": duration,
        "rounds": rounds,
        "concurrency": concurrency,
        "s_time_clients": s_time_clients,
        "patients": patient_count,
        "generator": f"{wrk_version()}; openssl s_time",
        "pinning": f"servers on core {server_cpu}, generators on core {generator_cpu}"
        if server_cpu is not None
        else "no pinning",
        "openssl": ssl.OPENSSL_VERSION,
    }
    return summarize(cells, settings)


def measure(
    servers: dict[str, Server],
    paths: list[str],
    seconds: int,
    rounds: int,
    concurrency: int,
    cpu: int | None,
    tmp: Path,
) -> dict[tuple[str, str], Cell]:
    cells: dict[tuple[str, str], Cell] = {}
    names = list(servers)
    for index in range(rounds):
        for workload in (READ, CONNECT):
            for target in names[index % 2 :] + names[: index % 2]:
                server = servers[target]
                spec = LoadSpec(
                    server.url,
                    "GET",
                    paths if workload == READ else ["/healthz"],
                    None,
                    seconds,
                    concurrency,
                    cpu,
                    0,
                    server.authorization if workload == READ else None,
                    close=workload == CONNECT,
                )
                if index == 0:  # warm-up: the token cache, SQLite pages, TLS session tickets
                    run_load(LoadSpec(**{**spec.__dict__, "duration_s": 1}), tmp, use_wrk=True)
                before = server.cpu_seconds()
                result = run_load(spec, tmp / "load", use_wrk=True)
                cell = cells.setdefault((target, workload), Cell(target, workload))
                cell.rounds.append(Round(result, server.cpu_seconds() - before))
                _progress(index, rounds, workload, target, result)
    return cells


def _progress(index: int, rounds: int, workload: str, target: str, result: LoadResult) -> None:
    report.console.print(
        f"  round {index + 1}/{rounds} {workload:<17} {target:<6} {result.rps:>9,.0f} req/s  "
        f"p50 {result.p50_ms:6.2f} ms  errors {result.errors}"
    )


def summarize(cells: dict[tuple[str, str], Cell], settings: dict[str, Any]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for (target, workload), cell in cells.items():
        reference = cells[(HTTP, READ if workload == READ else CONNECT)]
        cpu, ref_cpu = cell.cpu_us_per_request, reference.cpu_us_per_request
        timed = workload not in FULL
        rows.append(
            {
                "workload": workload,
                "target": target,
                "requests": cell.requests,
                "rps": round(cell.rps, 1),
                "p50_ms": round(cell.p50_ms, 3) if timed else None,
                "p99_ms": round(cell.p99_ms, 3) if timed else None,
                "errors": cell.errors,
                "server_cpu_us_per_request": round(cpu, 1) if cpu else None,
                "server_core_busy": round(cell.server_busy, 3),
                "generator_core_busy": round(cell.generator_busy, 3),
                "throughput_ratio": round(cell.rps / reference.rps, 3) if reference.rps else None,
                "tls_cpu_us": round(cpu - ref_cpu, 1) if cpu and ref_cpu else None,
                "cpu_ratio": round(ref_cpu / cpu, 3) if cpu and ref_cpu else None,
                "rounds": [
                    {**r.load.as_dict(), "server_cpu_s": round(r.server_cpu_s, 3)}
                    for r in cell.rounds
                ],
            }
        )
    order = [READ, CONNECT, *FULL]
    rows.sort(key=lambda r: (order.index(r["workload"]), r["target"]))
    return {
        "benchmark": "tls",
        "environment": report.environment(),
        "settings": settings,
        "results": rows,
    }


HEADERS = (
    "workload", "target", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req", "srv CPU",
    "gen CPU", "x http req/s", "+TLS µs/req", "http CPU / CPU",
)  # fmt: skip


def table_row(r: dict[str, Any]) -> list[report.Cell]:
    return [
        r["workload"], r["target"], r["rps"], r["p50_ms"], r["p99_ms"], r["errors"],
        r["server_cpu_us_per_request"], f"{r['server_core_busy']:.0%}",
        f"{r['generator_core_busy']:.0%}", r["throughput_ratio"], r["tls_cpu_us"], r["cpu_ratio"],
    ]  # fmt: skip


def table_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [table_row(r) for r in data["results"]]


def to_markdown(data: dict[str, Any]) -> str:
    s, env = data["settings"], data["environment"]
    return "\n".join(
        [
            "# Santinel TLS benchmark",
            "",
            f"{env['date']}, commit {env['commit']}, Python {env['python']}, {env['cpus']} CPUs, "
            f"load average at start {env['load_average_at_start']}; {s['openssl']}.",
            f"Generators: {s['generator']}; {s['concurrency']} wrk connections, "
            f"{s['s_time_clients']} s_time clients; {s['pinning']}. {s['duration_s_per_workload']}"
            f" s per workload and target in {s['rounds']} alternating rounds; "
            f"{s['patients']} patients.",
            "",
            report.markdown_table(HEADERS, table_rows(data)),
            "`read`: secured GET by id on kept-alive connections. `connect`: GET /healthz, a new "
            "connection per request (HTTPS: resumed TLS 1.3 session). `connect-full-*`: a full "
            "handshake per request (s_time; no latency figures), compared with HTTP's `connect`. "
            "`+TLS µs/req`: server CPU per request over HTTPS minus the same over HTTP.",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=6, help="seconds per workload/target")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument("--concurrency", type=int, default=16, help="wrk connections")
    parser.add_argument("--s-time-clients", type=int, default=4, help="parallel s_time clients")
    parser.add_argument("--patients", type=int, default=200, help="patients loaded first")
    args = parser.parse_args(argv)
    data = run(
        duration=min(max(args.duration, 1), 600),
        rounds=min(max(args.rounds, 1), 10),
        concurrency=min(max(args.concurrency, 1), 1024),
        patient_count=min(max(args.patients, 1), 100_000),
        s_time_clients=min(max(args.s_time_clients, 1), 64),
    )
    report.print_table("Santinel over HTTPS vs plain HTTP", HEADERS, table_rows(data))
    report.write_results("tls", data, to_markdown(data))
    return data


if __name__ == "__main__":
    main()
