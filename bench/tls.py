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

import contextlib
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from bench import harness, report
from bench.loadgen import LoadResult, children_cpu, pin_to, wrk_path, wrk_version
from bench.patients import patients

HTTP, HTTPS = "http", "https"
READ, CONNECT = "read", "connect"
FULL = {"connect-full-1.3": "-tls1_3", "connect-full-1.2": "-tls1_2"}
S_TIME_COUNT = re.compile(r"(\d+) connections in [\d.]+ real seconds")


# -- servers ------------------------------------------------------------------------------------
def launch(
    name: str, https: bool, store: list[str], env: dict[str, str], log: Path, cpu: int | None
) -> harness.Server:
    command = harness.santinel_command(harness.free_port(), store, https=https)
    return harness.start_process(name, command, env, log, cpu, ca=trust(store) if https else None)


def trust(store: list[str]) -> Path:
    """The development CA `santinel serve` creates in its data dir."""
    return Path(store[store.index("--data-dir") + 1]) / "tls" / "ca.pem"


def authorize(
    server: harness.Server, store: list[str], env: dict[str, str], ca: Path | None
) -> str:
    """A full-access token for `server` (its own audience: scheme and port differ)."""
    return harness.bearer(server, harness.register_client("bench-tls", store, env), ca)


# -- full handshakes (openssl s_time) -----------------------------------------------------------
def full_handshakes(
    server: harness.Server, flag: str, seconds: int, clients: int, cpu: int | None
) -> LoadResult:
    """K parallel `openssl s_time -new` clients: every connection a full handshake."""
    port = server.url.rsplit(":", 1)[1]
    command = [
        "openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(seconds),
        "-www", "/healthz", flag,
    ]  # fmt: skip
    before = children_cpu()
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
    return LoadResult(total, 0, elapsed, 0.0, 0.0, 0.0, 0.0, children_cpu() - before)


# -- the run ------------------------------------------------------------------------------------
def run(
    *, duration: int, rounds: int, concurrency: int, patient_count: int, s_time_clients: int
) -> dict[str, Any]:
    if wrk_path() is None or shutil.which("openssl") is None:
        raise SystemExit("bench.tls needs wrk and openssl (apt-get install -y wrk openssl)")
    server_cpu, generator_cpu = harness.choose_cores()
    if generator_cpu is not None:
        os.sched_setaffinity(0, {generator_cpu})
    env = harness.clean_env()
    per_round = max(1, round(duration / rounds))
    with tempfile.TemporaryDirectory(prefix="santinel-bench-tls-") as folder:
        tmp = Path(folder)
        store = ["--data-dir", str(tmp / "data")]
        servers: dict[str, harness.Server] = {}
        with contextlib.ExitStack() as stack:
            for name, https in ((HTTP, False), (HTTPS, True)):  # one after the other: one schema
                server = launch(name, https, store, env, tmp / f"{name}.log", server_cpu)
                stack.callback(server.stop)
                ca = trust(store) if https else None
                server.authorization = authorize(server, store, env, ca)
                servers[name] = server
            bodies = [orjson.dumps(p) for p in patients(patient_count, seed=42)]
            ids = harness.load_patients(servers[HTTP], bodies)
            paths = [f"/fhir/Patient/{i}" for i in ids]
            # warm-up: the token cache, SQLite pages, TLS session tickets
            plan = harness.Plan(
                per_round, 1, rounds, concurrency, generator_cpu, True, tmp / "load"
            )
            cells = measure(servers, paths, plan)
            for name, flag in FULL.items():
                server = servers[HTTPS]
                cell = cells.setdefault((HTTPS, name), harness.Cell(HTTPS, name))
                handshakes = partial(
                    full_handshakes, server, flag, per_round, s_time_clients, generator_cpu
                )
                for index in range(rounds):
                    _progress(index, rounds, name, HTTPS, harness.record(cell, server, handshakes))
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
    servers: dict[str, harness.Server],
    paths: list[str],
    plan: harness.Plan,
) -> dict[tuple[str, str], harness.Cell]:
    cells: dict[tuple[str, str], harness.Cell] = {}
    for index in range(plan.rounds):
        for workload in (READ, CONNECT):
            for target in harness.rotate(list(servers), index):
                server = servers[target]
                if workload == READ:
                    spec = plan.spec(server, paths, server.authorization)
                else:
                    spec = plan.spec(server, ["/healthz"], None, close=True)
                cell = cells.setdefault((target, workload), harness.Cell(target, workload))
                result = plan.measure(index, cell, server, spec)
                _progress(index, plan.rounds, workload, target, result)
    return cells


def _progress(index: int, rounds: int, workload: str, target: str, result: LoadResult) -> None:
    harness.progress(index, rounds, f"{workload:<17} {target:<6}", result, p99=False)


def summarize(
    cells: dict[tuple[str, str], harness.Cell], settings: dict[str, Any]
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for (target, workload), cell in cells.items():
        reference = cells[(HTTP, READ if workload == READ else CONNECT)]
        cpu, ref_cpu = cell.cpu_us_per_request, reference.cpu_us_per_request
        row = {
            "workload": workload,
            "target": target,
            **harness.load_figures(cell),
            **harness.busy_figures(cell),
            "throughput_ratio": round(cell.rps / reference.rps, 3) if reference.rps else None,
            "tls_cpu_us": round(cpu - ref_cpu, 1) if cpu and ref_cpu else None,
            "cpu_ratio": round(ref_cpu / cpu, 3) if cpu and ref_cpu else None,
            "rounds": harness.round_figures(cell, digits=3),
        }
        if workload in FULL:  # s_time gives no latencies: none rather than zeros
            row["p50_ms"] = row["p99_ms"] = None
        rows.append(row)
    order = [READ, CONNECT, *FULL]
    rows.sort(key=lambda r: (order.index(r["workload"]), r["target"]))
    return report.result_data("tls", settings, rows)


HEADERS = (
    "workload", "target", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req", "srv CPU",
    "gen CPU", "x http req/s", "+TLS µs/req", "http CPU / CPU",
)  # fmt: skip


def table_row(r: dict[str, Any]) -> list[report.Cell]:
    return [
        r["workload"], r["target"], *harness.load_columns(r),
        r["throughput_ratio"], r["tls_cpu_us"], r["cpu_ratio"],
    ]  # fmt: skip


def table_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [table_row(r) for r in data["results"]]


def to_markdown(data: dict[str, Any]) -> str:
    s, env = data["settings"], data["environment"]
    return "\n".join(
        [
            "# Santinel TLS benchmark",
            "",
            harness.machine_line(env, f"; {s['openssl']}"),
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
    parser = harness.cli_parser(__doc__)
    parser.add_argument("--duration", type=int, default=6, help="seconds per workload/target")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument("--concurrency", type=int, default=16, help="wrk connections")
    parser.add_argument("--s-time-clients", type=int, default=4, help="parallel s_time clients")
    parser.add_argument("--patients", type=int, default=200, help="patients loaded first")
    args = parser.parse_args(argv)
    data = run(
        duration=harness.clamp(args.duration, 1, 600),
        rounds=harness.clamp(args.rounds, 1, 10),
        concurrency=harness.clamp(args.concurrency, 1, 1024),
        patient_count=harness.clamp(args.patients, 1, 100_000),
        s_time_clients=harness.clamp(args.s_time_clients, 1, 64),
    )
    tables = [("Santinel over HTTPS vs plain HTTP", HEADERS, table_rows(data))]
    report.publish("tls", data, to_markdown(data), tables)
    return data


if __name__ == "__main__":
    main()
