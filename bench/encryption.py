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
  and wrapped by the KEK, the body sealed, 37 blind-index digests for names, identifiers,
  telecom, address and birth date: 70 before issue 8's cuts) — the worst case;
- `observe`: POST /fhir/Observation for an existing patient (the common write: the patient's
  DEK looked up, the body sealed; no identifying index value).

Overhead = null-cipher req/s ÷ encrypted req/s - 1, and encrypted CPU µs/req ÷ null-cipher
CPU µs/req - 1. Results: `bench/results/encryption.{json,md}`.
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
from bench.core import Workload, authorize_and_load, measure
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


def summarize(
    cells: dict[tuple[str, str], harness.Cell], settings: dict[str, Any]
) -> dict[str, Any]:
    rows, comparison = [], []
    for workload in WORKLOADS:
        for target in TARGETS:
            cell = cells[(target, workload)]
            rows.append(
                {
                    "workload": workload,
                    "target": target,
                    **harness.load_figures(cell),
                    "server_core_busy": round(cell.server_busy, 3),
                }
            )
        enc, null = cells[(ENCRYPTED, workload)], cells[(NULL, workload)]
        paired, _ = harness.paired_overheads(enc, null)
        by_rps = null.rps / enc.rps - 1 if enc.rps else None
        enc_cpu, null_cpu = enc.cpu_us_per_request, null.cpu_us_per_request
        by_cpu = enc_cpu / null_cpu - 1 if enc_cpu and null_cpu else None
        comparison.append(
            {
                "workload": workload,
                "overhead_throughput": harness.rounded(by_rps, 4),
                "overhead_throughput_median_round": harness.rounded_median(paired),
                "overhead_cpu": harness.rounded(by_cpu, 4),
                "met": by_rps is not None and by_rps <= TARGET_OVERHEAD,
                "met_by_cpu": by_cpu is not None and by_cpu <= TARGET_OVERHEAD,
            }
        )
    return report.result_data(
        "encryption", settings, rows, comparison=comparison, target=TARGET_OVERHEAD
    )


HEADERS = ("workload", "target", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req", "srv CPU")
COMPARISON_HEADERS = (
    "workload", "overhead by req/s", "median round", "overhead by CPU/req", "target",
)  # fmt: skip


def table_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [
        [r["workload"], r["target"], *harness.load_columns(r, generator=False)]
        for r in data["results"]
    ]


def comparison_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    target = f"≤ {data['target']:.0%}"
    return [
        [c["workload"], harness.pct(c["overhead_throughput"]),
         harness.pct(c["overhead_throughput_median_round"]), harness.pct(c["overhead_cpu"]), target]
        for c in data["comparison"]
    ]  # fmt: skip


def to_markdown(data: dict[str, Any]) -> str:
    s, env = data["settings"], data["environment"]
    lines = [
        "# Santinel encryption at rest: encrypted vs null cipher",
        "",
        harness.machine_line(env),
        f"{harness.generator_line(s)} {s['duration_s']} s per workload and target over "
        f"{s['rounds']} alternating rounds; {s['patients']} patients loaded into each server's "
        "own SQLite data directory.",
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
    o: harness.Options,
) -> dict[str, Any]:
    cores = harness.choose_cores()
    pinning = harness.pinning_text(cores, "both servers")
    load = harness.prepare_load(python_generator=o.python_generator, pinning=pinning, cores=cores)
    server_cpu = load.server_cpu
    harness.announce(load)
    env = harness.clean_env()
    bodies = [orjson.dumps(p) for p in patients(o.patients, seed=42)]
    create_body = orjson.dumps(patients(1, seed=7)[0])
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="santinel-encbench-")))
        servers: dict[str, harness.Server] = {}
        paths: dict[str, list[str]] = {}
        for name in TARGETS:
            store = ["--data-dir", str(tmp / name)]
            port = harness.free_port()
            command = (  # the null cipher: `santinel serve`, same arguments, its sealer swapped
                harness.bench_app_command("bench.null_cipher_app", port, store)
                if name == NULL
                else harness.santinel_command(port, store)
            )
            server = harness.start_process(
                name, command, env, tmp / f"{name}.log", server_cpu, o.nice
            )
            stack.callback(server.stop)
            loaded = authorize_and_load(server, store, env, bodies)
            subject = {**orjson.loads(bodies[0]), "id": SUBJECT}
            with httpx.Client(base_url=server.url, timeout=30.0) as http:
                answer = http.put(
                    f"/fhir/Patient/{SUBJECT}",
                    content=orjson.dumps(subject),
                    headers={
                        "Content-Type": harness.MEDIA,
                        "Authorization": server.authorization or "",
                    },
                )
                answer.raise_for_status()
            servers[name], paths[name] = server, loaded
        workloads = [
            Workload("read", "GET", None),
            Workload("create", "POST", create_body, ["/fhir/Patient"]),
            Workload("observe", "POST", orjson.dumps(OBSERVATION), ["/fhir/Observation"]),
        ]
        plan = harness.Plan.of(o, load, tmp / "load")
        cells = measure(servers, paths, workloads, plan, widths=(8, 12), p99=False)
    return summarize(
        cells,
        {
            "duration_s": o.duration * o.rounds,  # per workload and target
            "rounds": o.rounds,
            "concurrency": o.concurrency,
            "patients": o.patients,
            "generator": load.generator,
            "pinning": pinning,
        },
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = harness.cli_parser(__doc__)
    harness.add_load_options(parser, duration=5, rounds=4, patients=500)
    parser.add_argument("--python-generator", action="store_true", help="no wrk even if present")
    parser.add_argument("--nice", type=int, default=0, help="priority change of the processes")
    parser.add_argument("--output", default="encryption", help="results name in bench/results")
    args = parser.parse_args(argv)
    data = run(harness.bounded_options(args, max_duration=60, max_warmup=30, max_rounds=20))
    tables = [
        ("Encryption at rest: encrypted vs null cipher", HEADERS, table_rows(data)),
        ("Encryption overhead", COMPARISON_HEADERS, comparison_rows(data)),
    ]
    report.publish(args.output, data, to_markdown(data), tables)
    return data


if __name__ == "__main__":
    main()
