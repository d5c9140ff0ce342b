"""Candidate FHIR validators on every JSON example of the official R4 package, side by side.

    python -m bench.validators [--examples DIR] [--stride K]

Validators: `fhirkit` (fhirkit-rs, R4 in Rust), `fhir.resources` R4B models (the closest it has to
R4) and its R5 default (for reference), and Santinel's own `parse_resource` (fhirkit plus the
server's checks: id, references, safe narrative). Each example goes through every validator in
turn (interleaved, so machine noise hits all alike) after an untimed warm-up on one example of
each resource type (model classes are built lazily on first use).

Reported per validator: pass rate on the official examples (all meant to be valid), time per
resource (median, mean, total), and every example it rejects with its first error. When
`tests/data/invalid/` exists, also the detection rate on that broken corpus.

Examples folder: `--examples`, else env SANTINEL_FHIR_EXAMPLES, else
`.cache/fhir-r4-examples/package` (`make examples` fetches it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench import report

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXAMPLES = ROOT / ".cache" / "fhir-r4-examples" / "package"
INVALID_CORPUS = ROOT / "tests" / "data" / "invalid"
NOT_RESOURCES = {"package.json", ".index.json"}
MD_REJECTION_LIMIT = 80  # rejections listed per validator in the markdown (all are in the JSON)

# A validator takes the raw bytes and the type the URL names (None: any), and returns None
# (accepted) or its first error. Only Santinel's own check uses the URL's type.
Validate = Callable[[bytes, str | None], str | None]
# tests/functional/test_bad_input.py sends `<type>_<scenario>.json` to /<Type>, others to /Patient
URL_TYPES = {"patient_": "Patient", "observation_": "Observation", "bundle_": "Bundle"}


def _first_pydantic_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            location = ".".join(str(part) for part in first.get("loc", ()))
            return f"{location}: {first.get('msg', '')}".strip()
        except (IndexError, TypeError, AttributeError):
            pass
    return f"{type(exc).__name__}: {exc}"


def fhirkit_validator() -> Validate:
    import fhirkit

    def validate(body: bytes, _url_type: str | None = None) -> str | None:
        try:
            issues = fhirkit.validate(body)
        except fhirkit.ParseError as exc:
            return f"parse error: {exc}"
        errors = [i for i in issues if i.severity == "error"]
        return f"{errors[0].path}: {errors[0].message}" if errors else None

    return validate


def fhir_resources_validator(release: str) -> Validate:
    if release == "R4B":
        from fhir.resources.R4B import get_fhir_model_class
    else:
        from fhir.resources import get_fhir_model_class

    def validate(body: bytes, _url_type: str | None = None) -> str | None:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return f"not JSON: {exc}"
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            return "not a JSON object with a resourceType"
        try:
            model = get_fhir_model_class(data["resourceType"])
        except (ValueError, KeyError) as exc:
            return f"type not in the {release} models: {exc}"
        try:
            model.model_validate(data)
        except Exception as exc:  # pydantic ValidationError, and anything a model raises
            return _first_pydantic_error(exc)
        return None

    return validate


def santinel_validator() -> Validate:
    from santinel.errors import FhirError
    from santinel.fhir.validation import parse_resource

    def validate(body: bytes, url_type: str | None = None) -> str | None:
        try:
            parse_resource(body, expected_type=url_type)
        except FhirError as exc:
            issues = exc.all_issues()
            return issues[0].diagnostics if issues else exc.diagnostics
        return None

    return validate


def validators() -> dict[str, Validate]:
    """Every candidate that imports here (a missing one is reported, not fatal)."""
    found: dict[str, Validate] = {}
    candidates: dict[str, Callable[[], Validate]] = {
        "fhirkit": fhirkit_validator,
        "fhir.resources R4B": lambda: fhir_resources_validator("R4B"),
        "fhir.resources R5": lambda: fhir_resources_validator("R5"),
        "santinel parse_resource": santinel_validator,
    }
    for name, build in candidates.items():
        try:
            found[name] = build()
        except ImportError as exc:
            report.console.print(f"[yellow]{name} skipped: {exc}[/yellow]")
    return found


@dataclass
class Outcome:
    """One validator over one corpus."""

    times_ns: list[int] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)  # file name → first error
    crashed: dict[str, str] = field(default_factory=dict)  # unexpected exceptions

    def summary(self, total: int) -> dict[str, Any]:
        accepted = total - len(self.rejected) - len(self.crashed)
        times = self.times_ns or [0]
        return {
            "total": total,
            "accepted": accepted,
            "rejected": len(self.rejected),
            "crashed": len(self.crashed),
            "pass_rate": round(accepted / total, 4) if total else None,
            "median_us": round(statistics.median(times) / 1000, 1),
            "mean_us": round(statistics.fmean(times) / 1000, 1),
            "p99_us": round(sorted(times)[int(0.99 * (len(times) - 1))] / 1000, 1),
            "total_s": round(sum(times) / 1e9, 3),
        }


def corpus(folder: Path, stride: int = 1) -> list[tuple[str, bytes]]:
    """Every JSON file under `folder` (every `stride`-th one, for a quick run), sorted."""
    files = sorted(p for p in folder.rglob("*.json") if p.name not in NOT_RESOURCES)
    return [(str(p.relative_to(folder)), p.read_bytes()) for p in files[:: max(stride, 1)]]


def url_type(file_name: str) -> str:
    return next((t for p, t in URL_TYPES.items() if file_name.startswith(p)), "Patient")


def run_corpus(
    items: Sequence[tuple[str, bytes]], checks: dict[str, Validate], *, with_url_type: bool = False
) -> dict[str, Outcome]:
    outcomes = {name: Outcome() for name in checks}
    clock = time.perf_counter_ns
    for file_name, body in items:
        expected = url_type(file_name) if with_url_type else None
        for name, validate in checks.items():
            started = clock()
            try:
                error = validate(body, expected)
            except Exception as exc:
                error = None
                outcomes[name].crashed[file_name] = f"{type(exc).__name__}: {exc}"[:300]
            outcomes[name].times_ns.append(clock() - started)
            if error is not None:
                outcomes[name].rejected[file_name] = error[:300]
    return outcomes


def warm_up(items: Sequence[tuple[str, bytes]], checks: dict[str, Validate]) -> None:
    """One example of each resource type through every validator, untimed."""
    seen: set[str] = set()
    for _name, body in items:
        try:
            rtype = orjson.loads(body).get("resourceType")
        except orjson.JSONDecodeError:
            continue
        if isinstance(rtype, str) and rtype not in seen:
            seen.add(rtype)
            for validate in checks.values():
                try:
                    validate(body, None)
                except Exception:  # noqa: S112 - warm-up only: failures are measured later
                    continue


def run(examples: Path, stride: int = 1) -> dict[str, Any]:
    checks = validators()
    items = corpus(examples, stride)
    if not items:
        raise SystemExit(f"no JSON examples in {examples}: run `make examples`")
    report.console.print(f"{len(items)} official examples in {examples}; warming up…")
    warm_up(items, checks)
    report.console.print("validating (interleaved)…")
    outcomes = run_corpus(items, checks)
    data: dict[str, Any] = {
        "benchmark": "validators",
        "environment": report.environment(),
        "examples_folder": str(examples),
        "stride": stride,
        "valid": {
            name: {
                **o.summary(len(items)),
                "rejections": o.rejected,
                "crashes": o.crashed,
            }
            for name, o in outcomes.items()
        },
        "invalid": None,
    }
    if "fhirkit" in outcomes and "santinel parse_resource" in outcomes:
        data["santinel_rejects_beyond_fhirkit"] = sorted(
            set(outcomes["santinel parse_resource"].rejected) - set(outcomes["fhirkit"].rejected)
        )
    if INVALID_CORPUS.is_dir():
        broken = corpus(INVALID_CORPUS)
        if broken:
            report.console.print(f"{len(broken)} broken resources in {INVALID_CORPUS}…")
            bad = run_corpus(broken, checks, with_url_type=True)
            data["invalid"] = {
                name: {
                    "total": len(broken),
                    "detected": len(o.rejected),
                    "detection_rate": round(len(o.rejected) / len(broken), 4),
                    "crashed": o.crashed,
                    "missed": sorted({n for n, _ in broken} - set(o.rejected) - set(o.crashed)),
                    "median_us": o.summary(len(broken))["median_us"],
                }
                for name, o in bad.items()
            }
    else:
        report.console.print(f"no broken corpus at {INVALID_CORPUS}: detection not measured")
    return data


VALID_HEADERS = (
    "validator", "accepted", "total", "pass rate", "rejected", "crashed",
    "median µs", "mean µs", "p99 µs", "total s",
)  # fmt: skip
INVALID_HEADERS = ("validator", "detected", "total", "detection rate", "missed", "crashed")


def valid_row(name: str, v: dict[str, Any]) -> list[report.Cell]:
    return [
        name, v["accepted"], v["total"], f"{v['pass_rate']:.2%}", v["rejected"], v["crashed"],
        v["median_us"], v["mean_us"], v["p99_us"], v["total_s"],
    ]  # fmt: skip


def valid_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [valid_row(name, v) for name, v in data["valid"].items()]


def invalid_rows(data: dict[str, Any]) -> list[list[report.Cell]]:
    return [
        [
            name,
            v["detected"],
            v["total"],
            f"{v['detection_rate']:.2%}",
            len(v["missed"]),
            len(v["crashed"]),
        ]
        for name, v in (data["invalid"] or {}).items()
    ]


def to_markdown(data: dict[str, Any]) -> str:
    env = data["environment"]
    out = [
        "# FHIR validators on the official R4 examples",
        "",
        f"{env['date']}, commit {env['commit']}, Python {env['python']}, {env['cpus']} CPUs. "
        f"Examples: `{data['examples_folder']}` (every example is meant to be valid)"
        + (f", every {data['stride']}th only." if data["stride"] > 1 else "."),
        "",
        report.markdown_table(VALID_HEADERS, valid_rows(data)),
    ]
    if data["invalid"]:
        out += [
            "## Broken corpus (`tests/data/invalid/`)",
            "",
            "Every file there must be refused. Santinel is given the type the URL names (as in "
            "`tests/functional/test_bad_input.py`), the others only the body.",
            "",
        ]
        out.append(report.markdown_table(INVALID_HEADERS, invalid_rows(data)))
        for name, v in data["invalid"].items():
            if v["missed"]:
                out.append(f"- {name} misses: " + ", ".join(f"`{m}`" for m in v["missed"]))
            for file_name, error in sorted(v["crashed"].items()):
                out.append(f"- {name} CRASHES on `{file_name}`: {error}")
        out.append("")
    else:
        out += ["No broken corpus (`tests/data/invalid/` absent): detection not measured.", ""]
    beyond = data.get("santinel_rejects_beyond_fhirkit")
    if beyond is not None:
        out += [
            f"Santinel's own checks reject {len(beyond)} example(s) fhirkit accepts"
            + (": " + ", ".join(f"`{b}`" for b in beyond) if beyond else "."),
            "",
        ]
    for name, v in data["valid"].items():
        rejections = sorted(v["rejections"].items())
        out += [f"## Rejected by {name} ({len(rejections)})", ""]
        for file_name, error in rejections[:MD_REJECTION_LIMIT]:
            out.append(f"- `{file_name}`: {error.replace('|', '/').replace(chr(10), ' ')}")
        if len(rejections) > MD_REJECTION_LIMIT:
            out.append(f"- … {len(rejections) - MD_REJECTION_LIMIT} more in validators.json")
        for file_name, error in sorted(v["crashes"].items()):
            out.append(f"- CRASH `{file_name}`: {error}")
        out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=Path, default=None)
    parser.add_argument(
        "--stride", type=int, default=1, help="every K-th example only (quick runs); 1 = all"
    )
    parser.add_argument("--output", default="validators", help="results name in bench/results")
    args = parser.parse_args(argv)
    examples = args.examples or Path(os.environ.get("SANTINEL_FHIR_EXAMPLES", DEFAULT_EXAMPLES))
    data = run(examples, min(max(args.stride, 1), 1000))
    report.print_table("Official R4 examples (all valid)", VALID_HEADERS, valid_rows(data))
    if data["invalid"]:
        report.print_table("Broken corpus", INVALID_HEADERS, invalid_rows(data))
    for name, v in data["valid"].items():
        if 0 < len(v["rejections"]) <= 30:
            report.console.print(f"[bold]{name}[/bold] rejects:")
            for file_name, error in sorted(v["rejections"].items()):
                report.console.print(f"  {file_name}: {error[:160]}", markup=False)
    report.write_results(args.output, data, to_markdown(data))
    return data


if __name__ == "__main__":
    main()
