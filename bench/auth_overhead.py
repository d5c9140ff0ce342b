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

import contextlib
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import harness, report
from bench.patients import patients

TARGET_OVERHEAD = 0.15  # issue 5: the secured read costs at most 15 % more than a pre-verified one
SECURED = "secured"
PREVERIFIED = "preverified"
TARGETS = (SECURED, PREVERIFIED)


class TokenSource:
    """A full-access client registered in the store; a fresh access token on demand."""

    def __init__(self, store: list[str], env: dict[str, str]) -> None:
        self.credentials = harness.register_client("bench-auth", store, env)

    def authorization(self, server: harness.Server) -> str:
        """`Bearer …` with a token from `server`'s token endpoint (for that server)."""
        return harness.bearer(server, self.credentials)


def check_same_answer(servers: dict[str, harness.Server], path: str, authorization: str) -> bytes:
    """Both servers answer the same bytes, status and content type to the same request, and
    both refuse a request without a token (the pre-verified one still applies the policy)."""
    answers = []
    with httpx.Client(headers={"Accept": harness.MEDIA}, timeout=10.0) as client:
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
    servers: dict[str, harness.Server],
    paths: list[str],
    tokens: TokenSource,
    plan: harness.Plan,
) -> dict[str, harness.Cell]:
    cells = {name: harness.Cell(name, "read") for name in servers}
    for index in range(plan.rounds):
        # one fresh token per round, from the secured server, sent to both targets
        authorization = tokens.authorization(servers[SECURED])
        for name in harness.alternate(TARGETS, index):
            server, cell = servers[name], cells[name]
            result = plan.measure(index, cell, server, plan.spec(server, paths, authorization))
            cpu = cell.rounds[-1].cpu_us_per_request
            harness.progress(index, plan.rounds, f"{name:<12}", result, cpu_us=cpu)
    return cells


def summarize(cells: dict[str, harness.Cell], settings: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for name in TARGETS:
        cell = cells[name]
        rows.append(
            {
                "target": name,
                **harness.load_figures(cell),
                **harness.busy_figures(cell),
                "rounds": harness.round_figures(cell),
            }
        )
    secured, pre = cells[SECURED], cells[PREVERIFIED]
    throughput_ratio = harness.ratio(secured.rps, pre.rps)
    cpu_ratio = harness.ratio(pre.cpu_us_per_request, secured.cpu_us_per_request)
    paired, paired_cpu = harness.paired_overheads(secured, pre)
    overhead = (1 / throughput_ratio - 1) if throughput_ratio else None
    cpu_overhead = (1 / cpu_ratio - 1) if cpu_ratio else None
    comparison = {
        "throughput_ratio": round(throughput_ratio, 3) if throughput_ratio else None,
        "overhead_throughput": harness.rounded(overhead, 4),
        "overhead_throughput_per_round": [round(x, 4) for x in paired],
        "overhead_throughput_median_round": harness.rounded_median(paired),
        "cpu_ratio": round(cpu_ratio, 3) if cpu_ratio else None,
        "overhead_cpu": harness.rounded(cpu_overhead, 4),
        "overhead_cpu_per_round": [round(x, 4) for x in paired_cpu],
        "overhead_cpu_median_round": harness.rounded_median(paired_cpu),
        "p50_ratio": round(harness.ratio(secured.p50_ms, pre.p50_ms) or 0, 3),
        "p99_ratio": round(harness.ratio(secured.p99_ms, pre.p99_ms) or 0, 3),
        "target": TARGET_OVERHEAD,
        "met": overhead is not None and overhead <= TARGET_OVERHEAD,
        "met_by_cpu": cpu_overhead is not None and cpu_overhead <= TARGET_OVERHEAD,
    }
    return report.result_data("auth_overhead", settings, rows, comparison=comparison)


HEADERS = (
    "target", "req/s", "p50 ms", "p99 ms", "errors", "CPU µs/req", "srv CPU", "gen CPU",
)  # fmt: skip
COMPARISON_HEADERS = (
    "measure", "secured ÷ preverified", "overhead (all rounds)", "overhead (median round)",
    "target",
)  # fmt: skip
SATURATED = 0.85  # share of its core a server must use for its throughput to be a ceiling


def table_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [[r["target"], *harness.load_columns(r)] for r in data["results"]]


def comparison_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    c = data["comparison"]
    target = f"≤ {c['target']:.0%}"
    cpu_ratio = round(1 / c["cpu_ratio"], 3) if c["cpu_ratio"] else None
    return [
        ["throughput (req/s)", c["throughput_ratio"], harness.pct(c["overhead_throughput"]),
         harness.pct(c["overhead_throughput_median_round"]), target],
        ["server CPU per request", cpu_ratio, harness.pct(c["overhead_cpu"]),
         harness.pct(c["overhead_cpu_median_round"]), target],
        ["p50 latency", c["p50_ratio"], None, None, None],
        ["p99 latency", c["p99_ratio"], None, None, None],
    ]  # fmt: skip


def verdict_text(data: dict[str, Any]) -> str:
    c = data["comparison"]
    text = (
        f"Token verification overhead on a read by id: {harness.pct(c['overhead_throughput'])} by "
        f"throughput ({'met' if c['met'] else 'NOT met'}), {harness.pct(c['overhead_cpu'])} by "
        f"server CPU per request ({'met' if c['met_by_cpu'] else 'NOT met'}); target ≤ "
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
        harness.machine_line(env),
        harness.generator_line(s),
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
        + ", ".join(harness.pct(x) for x in data["comparison"]["overhead_throughput_per_round"])
        + "; by CPU: "
        + ", ".join(harness.pct(x) for x in data["comparison"]["overhead_cpu_per_round"])
        + ".",
        "",
        verdict_text(data),
    ]
    return "\n".join(lines) + "\n"


def run(
    o: harness.Options,
) -> dict[str, Any]:
    cores = harness.choose_cores()
    pinning = harness.with_nice(harness.pinning_text(cores, "both servers"), o.nice)
    load = harness.prepare_load(python_generator=o.python_generator, pinning=pinning, cores=cores)
    server_cpu = load.server_cpu
    harness.announce(load)
    env = harness.clean_env()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="santinel-authbench-")))
        store = ["--data-dir", str(tmp / "sqlite")]
        tokens = TokenSource(store, env)
        # A third server loads the data and stops: the two measured servers start alike, fresh
        # on the same database (neither carries the loading's heap, caches or connections).
        with contextlib.ExitStack() as loading:
            loader = harness.start_process(
                "loader",
                harness.santinel_command(harness.free_port(), store),
                env,
                tmp / "loader.log",
                None,
            )
            loading.callback(loader.stop)
            loader.authorization = tokens.authorization(loader)
            started = time.perf_counter()
            bodies = [orjson.dumps(p) for p in patients(o.patients, seed=42)]
            ids = harness.load_patients(loader, bodies)
            report.console.print(
                f"loaded {len(ids)} patients in {time.perf_counter() - started:.1f} s"
            )
        secured = harness.start_process(
            SECURED, harness.santinel_command(harness.free_port(), store), env, tmp / "secured.log",
            server_cpu, o.nice,
        )  # fmt: skip
        stack.callback(secured.stop)
        secured.authorization = tokens.authorization(secured)
        # `santinel serve` with the very same arguments, its app swapped (bench/preverified_app.py)
        command = harness.bench_app_command("bench.preverified_app", harness.free_port(), store)
        pre_env = {**env, "BENCH_PREVERIFIED_TOKEN": secured.authorization}
        preverified = harness.start_process(
            PREVERIFIED, command, pre_env, tmp / "preverified.log", server_cpu, o.nice
        )
        stack.callback(preverified.stop)
        servers = {SECURED: secured, PREVERIFIED: preverified}
        paths = [f"/fhir/Patient/{i}" for i in ids]
        sample = check_same_answer(servers, paths[0], secured.authorization)
        plan = harness.Plan.of(o, load, tmp / "load")
        cells = measure(servers, paths, tokens, plan)
    return summarize(
        cells,
        {
            "duration_s_per_round": o.duration,
            "rounds": o.rounds,
            "warmup_s": o.warmup,
            "concurrency": o.concurrency,
            "patients": o.patients,
            "read_body_bytes": len(sample),
            "authorization_bytes": len(secured.authorization or ""),
            "generator": load.generator,
            "pinning": pinning,
        },
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = harness.cli_parser(__doc__)
    harness.add_load_options(parser, duration=5, rounds=10, patients=1000)
    parser.add_argument(
        "--python-generator", action="store_true", help="use the Python generator even if wrk"
    )
    parser.add_argument(
        "--nice", type=int, default=0, help="priority change for servers and generator"
    )
    parser.add_argument("--output", default="auth_overhead", help="results name in bench/results")
    args = parser.parse_args(argv)
    # one token serves a round: it lives 5 minutes
    data = run(harness.bounded_options(args, max_duration=120, max_warmup=30, max_rounds=20))
    tables = [
        ("Read by id: secured vs pre-verified principal", HEADERS, table_rows(data)),
        ("Authentication overhead", COMPARISON_HEADERS, comparison_rows(data)),
    ]
    report.publish(args.output, data, to_markdown(data), tables, verdict_text(data))
    return data


if __name__ == "__main__":
    main()
