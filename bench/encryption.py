"""What encryption at rest costs: read by id and create, with encryption on (`santinel serve`)
side by side with the same app given a null cipher (`bench/null_cipher_app.py`; issue 8:
overhead ≤ 15 %).

    python -m bench.encryption [--duration S] [--rounds N] [--concurrency C] [--patients N]

Two server processes, each on its own SQLite data directory (the null cipher reads bodies as
plaintext, so they cannot share one), loaded with the same patients through themselves; both
pinned to the same core, the load generator (`wrk`, else the Python one) to another, workloads
in alternating rounds (`bench.core.measure`):

- `read`: GET /fhir/Patient/<random loaded id> (AES-256-GCM open; the DEK is cached);
- `create`: POST /fhir/Patient with a realistic French patient (a new patient: its DEK created
  and wrapped by the KEK, the body sealed, ~70 blind-index digests for names, identifiers,
  telecom, address and birth date) — the worst case;
- `observe`: POST /fhir/Observation for an existing patient (the common write: the patient's
  DEK looked up, the body sealed; no identifying index value).

Overhead = null-cipher req/s ÷ encrypted req/s - 1, and encrypted CPU µs/req ÷ null-cipher
CPU µs/req - 1. Results: `bench/results/encryption.{json,md}`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
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
    Cell,
    Round,
    Server,
    Workload,
    _clean_env,
    choose_cores,
    free_port,
    load_patients,
    obtain_authorization,
    santinel_command,
    santinel_launcher,
    start_process,
)
from bench.loadgen import LoadSpec, run_load, wrk_path, wrk_version
from bench.patients import patients

TARGET_OVERHEAD = 0.15
ENCRYPTED = "encrypted"
NULL = "null-cipher"
TARGETS = (ENCRYPTED, NULL)
WORKLOADS = ("read", "create", "observe")
SUBJECT = "bench-subject"  # a patient both servers hold under the same id
OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                }
            ]
        }
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "Heart rate"},
    "subject": {"reference": f"Patient/{SUBJECT}"},
    "effectiveDateTime": "2024-03-01T10:00:00Z",
    "valueQuantity": {
        "value": 72,
        "unit": "beats/min",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    },
}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def measure(
    servers: dict[str, Server],
    paths: dict[str, list[str]],
    workloads: list[tuple[Workload, list[str] | None]],
    duration: int,
    warmup: int,
    rounds: int,
    concurrency: int,
    generator_cpu: int | None,
    use_wrk: bool,
    workdir: Path,
    nice: int,
) -> dict[tuple[str, str], Cell]:
    """Alternating rounds (as `bench.core.measure`), each workload with its own path."""
    cells = {(t, w.name): Cell(t, w.name) for w, _ in workloads for t in servers}
    names = list(servers)
    for index in range(rounds):
        for workload, targets in workloads:
            order = names[index % 2 :] + names[: index % 2]
            for name in order:
                server = servers[name]
                spec = LoadSpec(
                    server.url, workload.method, targets or paths[name], workload.body,
                    duration, concurrency, generator_cpu, nice, server.authorization,
                )  # fmt: skip
                if index == 0 and warmup > 0:
                    warm = LoadSpec(**{**spec.__dict__, "duration_s": warmup})
                    run_load(warm, workdir, use_wrk=use_wrk)
                before = server.cpu_seconds()
                result = run_load(spec, workdir, use_wrk=use_wrk)
                cells[(name, workload.name)].rounds.append(
                    Round(result, server.cpu_seconds() - before)
                )
                report.console.print(
                    f"  round {index + 1}/{rounds} {workload.name:<8} {name:<12} "
                    f"{result.rps:>9,.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                    f"errors {result.errors}"
                )
    return cells


def summarize(cells: dict[tuple[str, str], Cell], settings: dict[str, Any]) -> dict[str, Any]:
    rows, comparison = [], []
    for workload in WORKLOADS:
        for target in TARGETS:
            cell = cells[(target, workload)]
            cpu = cell.cpu_us_per_request
            rows.append(
                {
                    "workload": workload,
                    "target": target,
                    "requests": cell.requests,
                    "rps": round(cell.rps, 1),
                    "p50_ms": round(cell.p50_ms, 3),
                    "p99_ms": round(cell.p99_ms, 3),
                    "errors": cell.errors,
                    "server_cpu_us_per_request": round(cpu, 1) if cpu else None,
                    "server_core_busy": round(cell.server_busy, 3),
                }
            )
        enc, null = cells[(ENCRYPTED, workload)], cells[(NULL, workload)]
        paired = [
            b.load.rps / a.load.rps - 1
            for a, b in zip(enc.rounds, null.rounds, strict=True)
            if a.load.rps
        ]
        by_rps = null.rps / enc.rps - 1 if enc.rps else None
        enc_cpu, null_cpu = enc.cpu_us_per_request, null.cpu_us_per_request
        by_cpu = enc_cpu / null_cpu - 1 if enc_cpu and null_cpu else None
        comparison.append(
            {
                "workload": workload,
                "overhead_throughput": round(by_rps, 4) if by_rps is not None else None,
                "overhead_throughput_median_round": round(statistics.median(paired), 4)
                if paired
                else None,
                "overhead_cpu": round(by_cpu, 4) if by_cpu is not None else None,
                "met": by_rps is not None and by_rps <= TARGET_OVERHEAD,
                "met_by_cpu": by_cpu is not None and by_cpu <= TARGET_OVERHEAD,
            }
        )
    return {
        "benchmark": "encryption",
        "environment": report.environment(),
        "settings": settings,
        "results": rows,
        "comparison": comparison,
        "target": TARGET_OVERHEAD,
    }


HEADERS = ("workload", "target", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req", "srv CPU")
COMPARISON_HEADERS = (
    "workload", "overhead by req/s", "median round", "overhead by CPU/req", "target",
)  # fmt: skip


def table_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [
        [r["workload"], r["target"], r["rps"], r["p50_ms"], r["p99_ms"], r["errors"],
         r["server_cpu_us_per_request"], f"{r['server_core_busy']:.0%}"]
        for r in data["results"]
    ]  # fmt: skip


def comparison_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    target = f"≤ {data['target']:.0%}"
    return [
        [c["workload"], _pct(c["overhead_throughput"]),
         _pct(c["overhead_throughput_median_round"]), _pct(c["overhead_cpu"]), target]
        for c in data["comparison"]
    ]  # fmt: skip


def to_markdown(data: dict[str, Any]) -> str:
    s, env = data["settings"], data["environment"]
    lines = [
        "# Santinel encryption at rest: encrypted vs null cipher",
        "",
        f"{env['date']}, commit {env['commit']}, Python {env['python']}, {env['cpus']} CPUs, "
        f"load average at start {env['load_average_at_start']}.",
        f"Generator: {s['generator']}, {s['concurrency']} connections; {s['pinning']}. "
        f"{s['duration_s']} s per workload and target over {s['rounds']} alternating rounds; "
        f"{s['patients']} patients loaded into each server's own SQLite data directory.",
        "",
        "`encrypted`: `santinel serve` (AES-256-GCM bodies under per-patient DEKs, blind "
        "indexes). `null-cipher`: the same app (`bench/null_cipher_app.py`) storing bodies as "
        "they are and indexing identifying values in clear.",
        "",
        report.markdown_table(HEADERS, table_rows(data)),
        report.markdown_table(COMPARISON_HEADERS, comparison_rows(data)),
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
    if generator_cpu is not None:
        os.sched_setaffinity(0, {generator_cpu})
    report.console.print(f"load generator: {generator}; {pinning}")
    env = _clean_env()
    bodies = [orjson.dumps(p) for p in patients(patient_count, seed=42)]
    create_body = orjson.dumps(patients(1, seed=7)[0])
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="santinel-encbench-")))
        servers, paths = {}, {}
        for name in TARGETS:
            store = ["--data-dir", str(tmp / name)]
            command = santinel_command(free_port(), store)
            if name == NULL:  # `santinel serve` with the same arguments, its sealer swapped
                command = [
                    sys.executable, "-m", "bench.null_cipher_app",
                    *command[len(santinel_launcher()) :],
                ]  # fmt: skip
            server = start_process(name, command, env, tmp / f"{name}.log", server_cpu, nice)
            stack.callback(server.stop)
            server.authorization = obtain_authorization(server, store, env)
            started = time.perf_counter()
            ids = load_patients(server, bodies)
            report.console.print(
                f"{name}: {len(ids)} patients loaded in {time.perf_counter() - started:.1f} s"
            )
            subject = {**orjson.loads(bodies[0]), "id": SUBJECT}
            with httpx.Client(base_url=server.url, timeout=30.0) as http:
                answer = http.put(
                    f"/fhir/Patient/{SUBJECT}",
                    content=orjson.dumps(subject),
                    headers={
                        "Content-Type": "application/fhir+json",
                        "Authorization": server.authorization or "",
                    },
                )
                answer.raise_for_status()
            servers[name], paths[name] = server, [f"/fhir/Patient/{i}" for i in ids]
        workloads = [
            (Workload("read", "GET", None), None),
            (Workload("create", "POST", create_body), ["/fhir/Patient"]),
            (Workload("observe", "POST", orjson.dumps(OBSERVATION)), ["/fhir/Observation"]),
        ]
        cells = measure(servers, paths, workloads, duration, warmup, rounds, concurrency,
                        generator_cpu, use_wrk, tmp / "load", nice)  # fmt: skip
    return summarize(
        cells,
        {
            "duration_s": duration * rounds,  # per workload and target
            "rounds": rounds,
            "concurrency": concurrency,
            "patients": patient_count,
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
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent connections")
    parser.add_argument("--patients", type=int, default=500, help="patients loaded first")
    parser.add_argument("--python-generator", action="store_true", help="no wrk even if present")
    parser.add_argument("--nice", type=int, default=0, help="priority change of the processes")
    parser.add_argument("--output", default="encryption", help="results name in bench/results")
    args = parser.parse_args(argv)
    data = run(
        duration=min(max(args.duration, 1), 60),
        warmup=min(max(args.warmup, 0), 30),
        rounds=min(max(args.rounds, 1), 20),
        concurrency=min(max(args.concurrency, 1), 1024),
        patient_count=min(max(args.patients, 1), 100_000),
        python_generator=args.python_generator,
        nice=min(max(args.nice, -20), 19),
    )
    report.print_table("Encryption at rest: encrypted vs null cipher", HEADERS, table_rows(data))
    report.print_table("Encryption overhead", COMPARISON_HEADERS, comparison_rows(data))
    report.write_results(args.output, data, to_markdown(data))
    return data


if __name__ == "__main__":
    main()
