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

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from bench import report
from bench.loadgen import (
    LoadResult,
    LoadSpec,
    pin_to,
    run_load,
    wrk_path,
    wrk_version,
)
from bench.patients import patient, patients

PG_ADMIN_URL = os.environ.get(
    "SANTINEL_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
READ_TARGET_RATIO = 0.40  # read by id on SQLite: at least 40 % of the floor's throughput
MEDIA = "application/fhir+json"
START_TIMEOUT_S = 60.0
FLOOR_SATURATED = 0.85  # share of its core the floor must use for its throughput to be a ceiling
FLOOR = "floor"


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def choose_cores() -> tuple[int | None, int | None]:
    """(server core, generator core): two distinct allowed cores, or no pinning at all."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return allowed[0], allowed[1]


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    authorization: str | None = None  # "Bearer …": a full-access token for the secured server

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (all its threads), from /proc."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
        return ticks / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANTINEL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_process(
    name: str, command: list[str], env: dict[str, str], log: Path, cpu: int | None, nice: int = 0
) -> Server:
    port = int(command[command.index("--port") + 1])
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env=env,
            preexec_fn=pin_to(cpu, nice),
            cwd=Path(__file__).resolve().parent.parent,
        )
    server = Server(name, process, f"http://127.0.0.1:{port}", log)
    try:
        wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                tail = server.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{server.name} exited at start:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{server.url}/readyz").status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"{server.name} was not ready after {START_TIMEOUT_S:.0f} s")


def santinel_launcher() -> list[str]:
    script = Path(sys.executable).with_name("santinel")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from santinel.cli.main import main; main()"]


def santinel_command(port: int, store: list[str], *, https: bool = False) -> list[str]:
    """`santinel serve` on the loopback: plain HTTP (`--http`) unless `https` (its default)."""
    command = [*santinel_launcher(), "serve", "--host", "127.0.0.1", "--port", str(port), *store]
    return command if https else [*command, "--http"]


def obtain_authorization(server: Server, store: list[str], env: dict[str, str]) -> str:
    """Register a full-access client in the server's store and get a token (valid 5 minutes,
    longer than a default run)."""
    registered = subprocess.run(
        [*santinel_launcher(), "clients", "add", "--name", "bench", "--scope", "system/*.cruds",
         "--secret", "--json", *store],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    client = json.loads(registered.stdout)
    response = httpx.post(
        f"{server.url}/oauth/token",
        auth=(client["client_id"], client["client_secret"]),
        data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
    )
    response.raise_for_status()
    return f"Bearer {response.json()['access_token']}"


def _auth_headers(server: Server) -> dict[str, str]:
    return {"Authorization": server.authorization} if server.authorization else {}


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; yields its postgresql:// URL."""
    import asyncpg

    host = urlsplit(PG_ADMIN_URL).hostname or ""
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError(f"benchmarks only use a PostgreSQL on the loopback, not {host!r}")
    name = f"santinel_bench_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- data ---------------------------------------------------------------------------------------


def load_patients(server: Server, bodies: Sequence[bytes]) -> list[str]:
    """POST every body; the server-assigned ids."""
    ids: list[str] = []
    headers = {"Content-Type": MEDIA, "Accept": MEDIA, "Prefer": "return=minimal"}
    headers.update(_auth_headers(server))
    with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as client:
        for body in bodies:
            response = client.post("/fhir/Patient", content=body)
            if response.status_code != 201:
                raise RuntimeError(f"loading into {server.name}: {response.status_code}")
            ids.append(response.headers["location"].split("/Patient/", 1)[1].split("/")[0])
    return ids


def check_same_answer(floor: Server, server: Server, path: str, expected: bytes) -> None:
    """The floor must answer exactly what Santinel answers (bytes and content type)."""
    with httpx.Client(headers={"Accept": MEDIA}, timeout=10.0) as client:
        real = client.get(server.url + path, headers=_auth_headers(server))
        bare = client.get(floor.url + path)
    if real.content != expected or bare.content != expected:
        raise RuntimeError("the floor and Santinel do not return the same bytes")
    if real.headers["content-type"] != bare.headers["content-type"]:
        types = (real.headers["content-type"], bare.headers["content-type"])
        raise RuntimeError(f"content types differ: {types}")


# -- measurements -------------------------------------------------------------------------------


@dataclass
class Round:
    load: LoadResult
    server_cpu_s: float


@dataclass
class Cell:
    """All rounds of one (target, workload)."""

    target: str
    workload: str
    rounds: list[Round] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(r.load.requests for r in self.rounds)

    @property
    def duration_s(self) -> float:
        return sum(r.load.duration_s for r in self.rounds)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return sum(r.load.errors for r in self.rounds)

    @property
    def p50_ms(self) -> float:
        return statistics.median(r.load.p50_ms for r in self.rounds)

    @property
    def p99_ms(self) -> float:
        return statistics.median(r.load.p99_ms for r in self.rounds)

    @property
    def cpu_us_per_request(self) -> float | None:
        if not self.requests:
            return None
        return sum(r.server_cpu_s for r in self.rounds) / self.requests * 1e6

    @property
    def server_busy(self) -> float:
        """Fraction of one core the server used: well below 1 while the generator is not
        saturated means the server waited (disk, database, locks, or other processes)."""
        return sum(r.server_cpu_s for r in self.rounds) / max(self.duration_s, 1e-9)

    @property
    def generator_busy(self) -> float:
        """Fraction of one core the load generator used."""
        return sum(r.load.generator_cpu_s for r in self.rounds) / max(self.duration_s, 1e-9)


@dataclass(frozen=True)
class Workload:
    name: str
    method: str
    body: bytes | None


def measure(
    servers: dict[str, Server],
    paths: dict[str, list[str]],
    workloads: Sequence[Workload],
    *,
    duration: int,
    warmup: int,
    rounds: int,
    concurrency: int,
    generator_cpu: int | None,
    use_wrk: bool,
    workdir: Path,
    nice: int = 0,
) -> dict[tuple[str, str], Cell]:
    cells = {(t, w.name): Cell(t, w.name) for w in workloads for t in servers}
    per_round = max(1, round(duration / rounds))
    names = list(servers)
    for index in range(rounds):
        for workload in workloads:
            order = names[index % len(names) :] + names[: index % len(names)]
            for target in order:
                server = servers[target]
                spec = LoadSpec(
                    server.url,
                    workload.method,
                    paths[target] if workload.method == "GET" else ["/fhir/Patient"],
                    workload.body,
                    per_round,
                    concurrency,
                    generator_cpu,
                    nice,
                    server.authorization,
                )
                if index == 0 and warmup > 0:
                    run_load(
                        LoadSpec(**{**spec.__dict__, "duration_s": warmup}),
                        workdir,
                        use_wrk=use_wrk,
                    )
                before = server.cpu_seconds()
                result = run_load(spec, workdir, use_wrk=use_wrk)
                cells[(target, workload.name)].rounds.append(
                    Round(result, server.cpu_seconds() - before)
                )
                report.console.print(
                    f"  round {index + 1}/{rounds} {workload.name:<6} {target:<18} "
                    f"{result.rps:>9,.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                    f"p99 {result.p99_ms:6.2f} ms  errors {result.errors}"
                )
    return cells


# -- the run ------------------------------------------------------------------------------------


def run(
    backends: Sequence[str],
    *,
    duration: int,
    warmup: int,
    rounds: int,
    concurrency: int,
    patient_count: int,
    python_generator: bool,
    nice: int = 0,
) -> dict[str, Any]:
    server_cpu, generator_cpu = choose_cores()
    use_wrk = wrk_path() is not None and not python_generator
    generator = wrk_version() if use_wrk else "python (httpx, uvloop)"
    pinning = (
        f"servers pinned to core {server_cpu}, load generator to core {generator_cpu}"
        if server_cpu is not None
        else "no pinning (fewer than 2 usable cores or no sched_setaffinity)"
    )
    if nice:
        pinning += f"; servers and generator at nice {nice:+d}"
    if generator_cpu is not None:
        os.sched_setaffinity(0, {generator_cpu})  # this orchestrator sleeps beside the generator
    report.console.print(f"load generator: {generator}; {pinning}")
    if not use_wrk:
        report.console.print(
            "[yellow]wrk not used: the Python generator may cap the floor "
            "(see gen CPU); `apt-get install -y wrk` for exact ratios[/yellow]"
        )
    bodies = [orjson.dumps(p) for p in patients(patient_count, seed=42)]
    create_body = orjson.dumps(patient(random.Random(7), 10**6))
    env_base = _clean_env()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="santinel-bench-")))
        servers: dict[str, Server] = {}
        paths: dict[str, list[str]] = {}
        sizes: dict[str, float] = {}
        for backend in backends:
            name = f"santinel-{backend}"
            if backend == "sqlite":
                store = ["--data-dir", str(tmp / "sqlite")]
            else:
                store = ["--database-url", stack.enter_context(postgres_database())]
            command = santinel_command(free_port(), store)
            server = start_process(name, command, env_base, tmp / f"{name}.log", server_cpu, nice)
            stack.callback(server.stop)
            server.authorization = obtain_authorization(server, store, env_base)
            started = time.perf_counter()
            ids = load_patients(server, bodies)
            report.console.print(
                f"{name}: loaded {len(ids)} patients in {time.perf_counter() - started:.1f} s"
            )
            servers[name], paths[name] = server, [f"/fhir/Patient/{i}" for i in ids]
        first = next(iter(servers.values()))
        sample_path = paths[first.name][0]
        with httpx.Client(headers={"Accept": MEDIA}, timeout=10.0) as client:
            sample = client.get(first.url + sample_path, headers=_auth_headers(first)).content
        body_file = tmp / "floor-body.json"
        body_file.write_bytes(sample)
        floor_command = [
            sys.executable, "-m", "bench.floor", "--port", str(free_port()),
            "--body-file", str(body_file),
        ]  # fmt: skip
        floor = start_process(FLOOR, floor_command, env_base, tmp / "floor.log", server_cpu, nice)
        stack.callback(floor.stop)
        check_same_answer(floor, first, sample_path, sample)
        targets = {FLOOR: floor, **servers}
        paths[FLOOR] = paths[first.name]
        workloads = [Workload("read", "GET", None), Workload("create", "POST", create_body)]
        cells = measure(
            targets,
            paths,
            workloads,
            duration=duration,
            warmup=warmup,
            rounds=rounds,
            concurrency=concurrency,
            generator_cpu=generator_cpu,
            use_wrk=use_wrk,
            workdir=tmp / "load",
            nice=nice,
        )
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
            "duration_s_per_workload": duration,
            "rounds": rounds,
            "warmup_s": warmup,
            "concurrency": concurrency,
            "patients": patient_count,
            "read_body_bytes": len(sample),
            "create_body_bytes": len(create_body),
            "generator": generator,
            "pinning": pinning,
        },
    )


def summarize(
    cells: dict[tuple[str, str], Cell],
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
                    "requests": cell.requests,
                    "rps": round(cell.rps, 1),
                    "p50_ms": round(cell.p50_ms, 3),
                    "p99_ms": round(cell.p99_ms, 3),
                    "errors": cell.errors,
                    "server_cpu_us_per_request": round(cpu, 1) if cpu else None,
                    "server_core_busy": round(cell.server_busy, 3),
                    "generator_core_busy": round(cell.generator_busy, 3),
                    "throughput_ratio": round(cell.rps / floor.rps, 3) if floor.rps else None,
                    "p50_ratio": round(cell.p50_ms / floor.p50_ms, 2) if floor.p50_ms else None,
                    "p99_ratio": round(cell.p99_ms / floor.p99_ms, 2) if floor.p99_ms else None,
                    "cpu_ratio": round(floor_cpu / cpu, 3) if floor_cpu and cpu else None,
                    "rounds": [
                        {**r.load.as_dict(), "server_cpu_s": round(r.server_cpu_s, 2)}
                        for r in cell.rounds
                    ],
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
    return {
        "benchmark": "core",
        "environment": report.environment(),
        "settings": settings,
        "results": rows,
        "peak_rss_mb": {k: round(v, 1) if v else None for k, v in rss.items()},
        "sqlite_disk_mb": {k: round(v, 2) for k, v in sizes.items()},
        "read_target": verdict,
    }


HEADERS = (
    "workload", "target", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req",
    "srv CPU", "gen CPU", "x floor req/s", "x floor p50", "x floor p99", "floor CPU / CPU",
)  # fmt: skip


def table_row(r: dict[str, Any]) -> list[report.Cell]:
    return [
        r["workload"], r["target"], r["rps"], r["p50_ms"], r["p99_ms"], r["errors"],
        r["server_cpu_us_per_request"], f"{r['server_core_busy']:.0%}",
        f"{r['generator_core_busy']:.0%}",
        r["throughput_ratio"], r["p50_ratio"], r["p99_ratio"], r["cpu_ratio"],
    ]  # fmt: skip


def table_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [table_row(r) for r in data["results"]]


def to_markdown(data: dict[str, Any]) -> str:
    s, env = data["settings"], data["environment"]
    lines = [
        "# Santinel core benchmark",
        "",
        f"{env['date']}, commit {env['commit']}, Python {env['python']}, {env['cpus']} CPUs, "
        f"load average at start {env['load_average_at_start']}.",
        f"Generator: {s['generator']}, {s['concurrency']} connections; {s['pinning']}.",
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument(
        "--duration", type=int, default=10, help="measured seconds per workload and target"
    )
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds (first round)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections")
    parser.add_argument("--patients", type=int, default=1000, help="patients loaded first")
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
    data = run(
        backends,
        duration=min(max(args.duration, 1), 600),
        warmup=min(max(args.warmup, 0), 60),
        rounds=min(max(args.rounds, 1), 10),
        concurrency=min(max(args.concurrency, 1), 1024),
        patient_count=min(max(args.patients, 1), 100_000),
        python_generator=args.python_generator,
        nice=min(max(args.nice, -20), 19),
    )
    report.print_table("Santinel core benchmark (ratios to the floor)", HEADERS, table_rows(data))
    if data["read_target"]:
        report.console.print(verdict_text(data["read_target"]))
    report.write_results(args.output or f"core-{args.backend}", data, to_markdown(data))
    return data


if __name__ == "__main__":
    main()
