"""What every side-by-side benchmark shares: server processes, tokens, alternating rounds, figures.

The benchmarks (`bench.core`, `bench.auth_overhead`, `bench.encryption`, `bench.audit`,
`bench.ratelimit`, `bench.tls`) differ in what they compare; they all start servers as
subprocesses on the loopback, drive them with `bench.loadgen` in alternating rounds while reading
each server's CPU from /proc, and report the same per-target figures. Those parts live here, once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench import report
from bench.loadgen import LoadResult, LoadSpec, pin_to, run_load, wrk_path, wrk_version

PG_ADMIN_URL = os.environ.get(
    "SANTINEL_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MEDIA = "application/fhir+json"
SCOPE = "system/*.cruds"  # full access: the benchmarks measure work, not refusals
START_TIMEOUT_S = 60.0
ROOT = Path(__file__).resolve().parent.parent
PYTHON_GENERATOR = "python (httpx, uvloop)"
NO_PINNING = "no pinning (fewer than 2 usable cores or no sched_setaffinity)"


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


def clean_env() -> dict[str, str]:
    """This environment without `SANTINEL_*`: servers configure themselves from their flags."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANTINEL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tls_verify(ca: Path | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=str(ca)) if ca is not None else True


def start_process(
    name: str,
    command: list[str],
    env: dict[str, str],
    log: Path,
    cpu: int | None,
    nice: int = 0,
    *,
    ca: Path | None = None,
) -> Server:
    """Start `command` (which has `--port N`) and wait until it is ready; `ca`: it serves HTTPS
    under a certificate of that CA."""
    port = int(command[command.index("--port") + 1])
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            env=env,
            preexec_fn=pin_to(cpu, nice),
            cwd=ROOT,
        )
    scheme = "https" if ca is not None else "http"
    server = Server(name, process, f"{scheme}://127.0.0.1:{port}", log)
    try:
        wait_ready(server, ca)
    except BaseException:
        server.stop()
        raise
    return server


def wait_ready(server: Server, ca: Path | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{server.name} exited at start:\n{tail}")
        if ca is None or ca.exists():  # an HTTPS server writes its CA first: trust it once there
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(f"{server.url}/readyz", verify=tls_verify(ca), timeout=2.0)
                if answer.status_code == 200:
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


def bench_app_command(module: str, port: int, store: list[str]) -> list[str]:
    """`santinel serve` with the very same arguments, run by a bench-only module that swaps one
    part of the app (`bench/preverified_app.py`, `bench/noaudit_app.py`, …)."""
    serve_args = santinel_command(port, store)[len(santinel_launcher()) :]
    return [sys.executable, "-m", module, *serve_args]


# -- clients and tokens -------------------------------------------------------------------------


def santinel_cli(args: list[str], env: dict[str, str]) -> str:
    """`santinel ARGS`; its standard output (its output and errors in the exception if it fails)."""
    done = subprocess.run(
        [*santinel_launcher(), *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"santinel {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def register_client(
    name: str, store: list[str], env: dict[str, str], *extra: str
) -> tuple[str, str]:
    """A full-access client registered in the store: (client id, client secret)."""
    out = santinel_cli(
        ["clients", "add", "--name", name, "--scope", SCOPE, "--secret", *extra, "--json", *store],
        env,
    )
    client = json.loads(out)
    return client["client_id"], client["client_secret"]


def bearer(server: Server, credentials: tuple[str, str], ca: Path | None = None) -> str:
    """`Bearer …` with a token from `server`'s token endpoint: its audience is that server (tokens
    live 5 minutes, longer than a round)."""
    response = httpx.post(
        f"{server.url}/oauth/token",
        auth=credentials,
        data={"grant_type": "client_credentials", "scope": SCOPE},
        verify=tls_verify(ca),
    )
    response.raise_for_status()
    return f"Bearer {response.json()['access_token']}"


def auth_headers(server: Server) -> dict[str, str]:
    return {"Authorization": server.authorization} if server.authorization else {}


def load_patients(server: Server, bodies: Sequence[bytes]) -> list[str]:
    """POST every body; the server-assigned ids."""
    ids: list[str] = []
    headers = {"Content-Type": MEDIA, "Accept": MEDIA, "Prefer": "return=minimal"}
    headers.update(auth_headers(server))
    with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as client:
        for body in bodies:
            response = client.post("/fhir/Patient", content=body)
            if response.status_code != 201:
                raise RuntimeError(f"loading into {server.name}: {response.status_code}")
            ids.append(response.headers["location"].split("/Patient/", 1)[1].split("/")[0])
    return ids


# -- PostgreSQL ---------------------------------------------------------------------------------


def pg_admin(sql: str) -> None:
    """One statement on the admin connection (CREATE/DROP DATABASE cannot run in a transaction)."""
    import asyncpg  # only the PostgreSQL runs need it

    async def execute() -> None:
        connection = await asyncpg.connect(PG_ADMIN_URL, timeout=10)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(execute())


@contextlib.contextmanager
def postgres_database(template: str | None = None) -> Iterator[str]:
    """A fresh PostgreSQL database (a copy of `template` if given), dropped afterwards; yields
    its postgresql:// URL."""
    host = urlsplit(PG_ADMIN_URL).hostname or ""
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError(f"benchmarks only use a PostgreSQL on the loopback, not {host!r}")
    if template is None:
        name = f"santinel_bench_{uuid.uuid4().hex[:12]}"
        pg_admin(f'CREATE DATABASE "{name}"')
    else:
        name = f"{template}_{os.urandom(3).hex()}"
        pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the load generator -------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadSetup:
    """Where servers and the generator run, and which generator: said in every result."""

    server_cpu: int | None
    generator_cpu: int | None
    use_wrk: bool
    generator: str  # "wrk 4.x" or the Python generator
    pinning: str


def pinning_text(
    cores: tuple[int | None, int | None], servers: str = "servers", no_pinning: str = NO_PINNING
) -> str:
    server_cpu, generator_cpu = cores
    if server_cpu is None:
        return no_pinning
    return f"{servers} pinned to core {server_cpu}, load generator to core {generator_cpu}"


def prepare_load(
    *, python_generator: bool, pinning: str, cores: tuple[int | None, int | None]
) -> LoadSetup:
    """Choose the generator and move this orchestrator to the generator's core: it sleeps while
    the generator runs, so it must not take the servers' core."""
    server_cpu, generator_cpu = cores
    use_wrk = wrk_path() is not None and not python_generator
    if generator_cpu is not None:
        os.sched_setaffinity(0, {generator_cpu})
    generator = wrk_version() if use_wrk else PYTHON_GENERATOR
    return LoadSetup(server_cpu, generator_cpu, use_wrk, generator, pinning)


def announce(setup: LoadSetup) -> None:
    report.console.print(f"load generator: {setup.generator}; {setup.pinning}")


def with_nice(pinning: str, nice: int) -> str:
    return pinning + (f"; servers and generator at nice {nice:+d}" if nice else "")


# -- measurements -------------------------------------------------------------------------------


@dataclass
class Round:
    load: LoadResult
    server_cpu_s: float

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / max(self.load.requests, 1) * 1e6


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


def rotate(names: Sequence[str], index: int) -> list[str]:
    """Round `index`'s order: each target leads in turn, so noise hits every target alike."""
    shift = index % len(names)
    return [*names[shift:], *names[:shift]]


def alternate(names: Sequence[str], index: int) -> list[str]:
    """Round `index`'s order: as given in even rounds, reversed in odd ones."""
    return list(names) if index % 2 == 0 else list(reversed(names))


def record(cell: Cell, server: Server, load: Callable[[], LoadResult]) -> LoadResult:
    """Run `load` and add it to `cell` with the CPU `server` used meanwhile."""
    before = server.cpu_seconds()
    result = load()
    cell.rounds.append(Round(result, server.cpu_seconds() - before))
    return result


@dataclass(frozen=True)
class Plan:
    """How every target of a run is driven: the same for all, since they are compared."""

    seconds: int  # measured, per round, workload and target
    warmup: int  # seconds of unrecorded load before each target's first round
    rounds: int
    concurrency: int
    generator_cpu: int | None
    use_wrk: bool
    workdir: Path  # where the generator's inputs (paths, body) are written
    nice: int = 0

    @classmethod
    def of(cls, o: Options, load: LoadSetup, workdir: Path, seconds: int | None = None) -> Plan:
        """The plan of a run from its options: `seconds` per round, else `o.duration`."""
        return cls(
            seconds or o.duration, o.warmup, o.rounds, o.concurrency, load.generator_cpu,
            load.use_wrk, workdir, o.nice,
        )  # fmt: skip

    def spec(
        self,
        server: Server,
        paths: Sequence[str],
        authorization: str | None,
        *,
        method: str = "GET",
        body: bytes | None = None,
        close: bool = False,
    ) -> LoadSpec:
        return LoadSpec(
            server.url, method, paths, body, self.seconds, self.concurrency, self.generator_cpu,
            self.nice, authorization, close,
        )  # fmt: skip

    def measure(self, index: int, cell: Cell, server: Server, spec: LoadSpec) -> LoadResult:
        """Round `index` of `spec` into `cell`; the first round after the warm-up."""
        if index == 0 and self.warmup > 0:
            run_load(replace(spec, duration_s=self.warmup), self.workdir, use_wrk=self.use_wrk)
        return record(cell, server, lambda: run_load(spec, self.workdir, use_wrk=self.use_wrk))


def progress(
    index: int,
    rounds: int,
    labels: str,
    result: LoadResult,
    *,
    rps_width: int = 9,
    p99: bool = True,
    cpu_us: float | None = None,
) -> None:
    """One line per measured run: the noise shows while it runs, not only in the summary."""
    line = (
        f"  round {index + 1}/{rounds} {labels} {result.rps:>{rps_width},.0f} req/s  "
        f"p50 {result.p50_ms:6.2f} ms"
    )
    if p99:
        line += f"  p99 {result.p99_ms:6.2f} ms"
    if cpu_us is not None:
        line += f"  CPU {cpu_us:6.0f} µs/req"
    report.console.print(f"{line}  errors {result.errors}")


# -- figures ------------------------------------------------------------------------------------


def load_figures(cell: Cell) -> dict[str, Any]:
    """The figures of every result row, in the order they are written."""
    cpu = cell.cpu_us_per_request
    return {
        "requests": cell.requests,
        "rps": round(cell.rps, 1),
        "p50_ms": round(cell.p50_ms, 3),
        "p99_ms": round(cell.p99_ms, 3),
        "errors": cell.errors,
        "server_cpu_us_per_request": round(cpu, 1) if cpu else None,
    }


def busy_figures(cell: Cell) -> dict[str, float]:
    return {
        "server_core_busy": round(cell.server_busy, 3),
        "generator_core_busy": round(cell.generator_busy, 3),
    }


def round_figures(cell: Cell, digits: int = 2) -> list[dict[str, Any]]:
    return [
        {**r.load.as_dict(), "server_cpu_s": round(r.server_cpu_s, digits)} for r in cell.rounds
    ]


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def rounded(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


def rounded_median(values: Sequence[float], digits: int = 4) -> float | None:
    return round(statistics.median(values), digits) if values else None


def paired_overheads(measured: Cell, reference: Cell) -> tuple[list[float], list[float]]:
    """Each round's overhead of `measured` over `reference` (both run back to back in it), by
    throughput and by server CPU per request: their median resists a burst of noise."""
    pairs = list(zip(measured.rounds, reference.rounds, strict=True))
    by_rps = [b.load.rps / a.load.rps - 1 for a, b in pairs if a.load.rps]
    by_cpu = [
        (a.server_cpu_s / a.load.requests) / (b.server_cpu_s / b.load.requests) - 1
        for a, b in pairs
        if a.load.requests and b.load.requests and b.server_cpu_s
    ]
    return by_rps, by_cpu


# -- reporting ----------------------------------------------------------------------------------


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def load_columns(r: dict[str, Any], *, generator: bool = True) -> list[report.Cell]:
    """req/s, p50 ms, p99 ms, errors, CPU µs/req, srv CPU (and gen CPU) of a result row."""
    cells: list[report.Cell] = [
        r["rps"], r["p50_ms"], r["p99_ms"], r["errors"], r["server_cpu_us_per_request"],
        f"{r['server_core_busy']:.0%}",
    ]  # fmt: skip
    return [*cells, f"{r['generator_core_busy']:.0%}"] if generator else cells


def machine_line(env: dict[str, Any], suffix: str = "") -> str:
    return (
        f"{env['date']}, commit {env['commit']}, Python {env['python']}, {env['cpus']} CPUs, "
        f"load average at start {env['load_average_at_start']}{suffix}."
    )


def generator_line(settings: dict[str, Any]) -> str:
    s = settings
    return f"Generator: {s['generator']}, {s['concurrency']} connections; {s['pinning']}."


def clamp(value: int, low: int, high: int) -> int:
    return min(max(value, low), high)


# -- command line -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """How a side-by-side run is driven, from its command line, within bounds."""

    duration: int
    warmup: int
    rounds: int
    concurrency: int
    patients: int
    python_generator: bool
    nice: int


def bounded_options(
    args: argparse.Namespace, *, max_duration: int, max_warmup: int, max_rounds: int
) -> Options:
    """The options of `add_load_options`, `--python-generator` and `--nice`, within bounds."""
    return Options(
        duration=clamp(args.duration, 1, max_duration),
        warmup=clamp(args.warmup, 0, max_warmup),
        rounds=clamp(args.rounds, 1, max_rounds),
        concurrency=clamp(args.concurrency, 1, 1024),
        patients=clamp(args.patients, 1, 100_000),
        python_generator=args.python_generator,
        nice=clamp(args.nice, -20, 19),
    )


def cli_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser whose --help shows the benchmark's module docstring as written."""
    return argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_load_options(
    parser: argparse.ArgumentParser,
    *,
    duration: int,
    rounds: int,
    patients: int,
    duration_help: str = "seconds per target and round",
    patients_help: str = "patients loaded first",
) -> None:
    """--duration, --warmup, --rounds, --concurrency, --patients: how every side-by-side run is
    driven (only the defaults differ between benchmarks)."""
    parser.add_argument("--duration", type=int, default=duration, help=duration_help)
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds (first round)")
    parser.add_argument("--rounds", type=int, default=rounds, help="alternating rounds")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections")
    parser.add_argument("--patients", type=int, default=patients, help=patients_help)
