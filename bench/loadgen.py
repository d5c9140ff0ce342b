"""Load generators, each in its OWN process so it never shares the GIL with a server.

`wrk` (Debian package `wrk`, C, one thread) when installed: it can drive far more requests per
second than the servers measured here, so the floor is not capped by the generator. Otherwise a
Python generator (httpx, keep-alive, C concurrent connections): it tops out at a few thousand
requests/s on one core, so it may cap the floor — the report says which one ran and how busy the
generator's core was (`gen CPU`: close to 100 % means the generator, not the server, was the
bottleneck and the ratios understate the gap).

    python -m bench.loadgen --url http://127.0.0.1:8080 --paths-file paths.txt --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

WRK_SCRIPT = Path(__file__).with_name("wrk_report.lua")
MAX_SAMPLES = 5_000_000  # bounds the Python generator's memory whatever the duration
LOOPBACK = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class LoadSpec:
    url: str  # http://127.0.0.1:PORT
    method: str
    paths: Sequence[str]  # one is picked at random for each request
    body: bytes | None
    duration_s: int
    concurrency: int
    cpu: int | None = None  # core to pin the generator to
    nice: int = 0  # scheduling priority change for the generator process
    authorization: str | None = None  # "Bearer …" for the secured server
    close: bool = False  # `Connection: close`: a new connection (and TLS handshake) per request


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int  # non-2xx/3xx answers, socket errors and timeouts
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    generator_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "rps": round(self.rps, 1)}


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str:
    exe = wrk_path()
    if exe is None:
        return "absent"
    out = subprocess.run(
        [exe, "--version"], capture_output=True, text=True, check=False, timeout=10
    )
    words = (out.stdout or out.stderr).split()
    return " ".join(words[:2]) if words else "wrk"


def check_loopback(url: str) -> None:
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    if host not in LOOPBACK:
        raise ValueError(f"benchmarks only target the loopback interface, not {host!r}")


def pin_to(cpu: int | None, nice: int = 0) -> Callable[[], None] | None:
    """A `preexec_fn` pinning the child (and every thread it starts) to one core and, when
    `nice` is not 0, changing its scheduling priority (negative: favoured over other work)."""
    pin = cpu is not None and hasattr(os, "sched_setaffinity")
    if not pin and not nice:
        return None

    def setup() -> None:
        if pin and cpu is not None:
            os.sched_setaffinity(0, {cpu})
        if nice:
            os.nice(nice)

    return setup


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_load(spec: LoadSpec, workdir: Path, *, use_wrk: bool) -> LoadResult:
    """One load run in a child process; blocks for about `spec.duration_s` seconds."""
    check_loopback(spec.url)
    workdir.mkdir(parents=True, exist_ok=True)
    paths_file = workdir / "paths.txt"
    paths_file.write_text("\n".join(spec.paths) + "\n")
    body_file = workdir / "body.json"
    body_file.write_bytes(spec.body or b"")
    exe = wrk_path()
    if use_wrk and exe is not None:
        command = [
            exe, "-t1", f"-c{spec.concurrency}", f"-d{spec.duration_s}s", "--timeout", "10s",
            "-s", str(WRK_SCRIPT), spec.url, "--",
            spec.method, str(paths_file), str(body_file) if spec.body else "",
            spec.authorization or "", "close" if spec.close else "",
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "bench.loadgen", "--url", spec.url, "--method", spec.method,
            "--paths-file", str(paths_file), "--duration", str(spec.duration_s),
            "--concurrency", str(spec.concurrency),
        ]  # fmt: skip
        if spec.body:
            command += ["--body-file", str(body_file)]
        if spec.authorization:
            command += ["--authorization", spec.authorization]
        if spec.close:
            command += ["--close"]
    before = children_cpu()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=spec.duration_s + 60,
        preexec_fn=pin_to(spec.cpu, spec.nice),
        cwd=Path(__file__).resolve().parent.parent,
    )
    cpu = children_cpu() - before
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH-JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr[-2000:]}")
    data = json.loads(line.removeprefix("BENCH-JSON "))
    if "duration_us" in data:  # wrk
        errors = sum(int(data[k]) for k in ("connect", "read", "write", "status", "timeout"))
        return LoadResult(
            requests=int(data["requests"]),
            errors=errors,
            duration_s=data["duration_us"] / 1e6,
            p50_ms=data["p50_us"] / 1000,
            p90_ms=data["p90_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            max_ms=data["max_us"] / 1000,
            generator_cpu_s=cpu,
        )
    return LoadResult(**{**data, "generator_cpu_s": cpu})


# -- the Python generator (runs as `python -m bench.loadgen`) ----------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


async def drive(
    url: str,
    method: str,
    paths: Sequence[str],
    body: bytes | None,
    duration: float,
    c: int,
    authorization: str | None = None,
    close: bool = False,
) -> dict[str, float | int]:
    import httpx

    check_loopback(url)
    headers = {"Accept": "application/fhir+json"}
    if body:
        headers["Content-Type"] = "application/fhir+json"
    if authorization:
        headers["Authorization"] = authorization
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=0 if close else c)
    latencies: list[float] = []
    errors = 0
    rng = random.Random()
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=10.0, headers=headers
    ) as client:
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline and len(latencies) < MAX_SAMPLES:
                started = time.perf_counter()
                try:
                    response = await client.request(method, rng.choice(paths), content=body)
                    ok = 200 <= response.status_code < 400
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(c)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    ms = [x * 1000 for x in (percentile(latencies, q) for q in (50, 90, 99))]
    return {
        "requests": len(latencies),
        "errors": errors,
        "duration_s": elapsed,
        "p50_ms": ms[0],
        "p90_ms": ms[1],
        "p99_ms": ms[2],
        "max_ms": latencies[-1] * 1000 if latencies else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--paths-file", type=Path, required=True)
    parser.add_argument("--body-file", type=Path)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--authorization", help="Authorization header value for every request.")
    parser.add_argument("--close", action="store_true", help="a new connection per request")
    args = parser.parse_args()
    paths = [p for p in args.paths_file.read_text().splitlines() if p]
    body = args.body_file.read_bytes() if args.body_file else None
    duration = min(max(args.duration, 0.1), 3600.0)
    work = drive(
        args.url,
        args.method,
        paths,
        body,
        duration,
        args.concurrency,
        args.authorization,
        args.close,
    )
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(work)
    else:
        result = uvloop.run(work)
    print("BENCH-JSON " + json.dumps(result))


if __name__ == "__main__":
    main()
