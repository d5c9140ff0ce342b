"""Outcomes of the search conformance harness and their report (a Markdown table per backend)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from santinel.fhir.search import registry
from tests.conformance.plan import DERIVED, Pair

VERIFIED, FAILED, SKIPPED = "verified", "failed", "skipped"
REPORT = Path(__file__).with_name("REPORT.md")


@dataclass(frozen=True)
class Outcome:
    status: str  # VERIFIED, FAILED or SKIPPED
    reason: str = ""
    example: str = ""  # the example's source (file name or Bundle entry)
    server_error: bool = False  # a query was answered 5xx


def category(pair: Pair) -> str:
    """The parameter's type, or the modifier for the derived `:identifier` / `:of-type` values."""
    resource_type, code = pair
    for suffix in DERIVED:
        if code.endswith(suffix):
            return suffix
    found = registry.param(resource_type, code)
    return found.type if found is not None else "?"


def counts(outcomes: dict[Pair, Outcome]) -> dict[str, Counter[str]]:
    table: dict[str, Counter[str]] = {}
    for pair, outcome in outcomes.items():
        table.setdefault(category(pair), Counter())[outcome.status] += 1
    return table


def definitions(outcomes: dict[Pair, Outcome]) -> tuple[int, int]:
    """(SearchParameter definitions probed, those verified on every base type probed): a
    definition such as `clinical-patient` spans several resource types."""
    statuses: dict[str, set[str]] = {}
    for (resource_type, code), outcome in outcomes.items():
        found = registry.param(resource_type, code)
        if found is not None:
            statuses.setdefault(found.url, set()).add(outcome.status)
    return len(statuses), sum(1 for s in statuses.values() if s == {VERIFIED})


def summary(backend: str, outcomes: dict[Pair, Outcome]) -> str:
    table = counts(outcomes)
    lines = [f"| {backend} | verified | failed | skipped |", "|---|---:|---:|---:|"]
    total: Counter[str] = Counter()
    for name in sorted(table, key=_order):
        row = table[name]
        total.update(row)
        lines.append(f"| {name} | {row[VERIFIED]} | {row[FAILED]} | {row[SKIPPED]} |")
    cells = " | ".join(f"**{total[status]}**" for status in (VERIFIED, FAILED, SKIPPED))
    lines.append(f"| **all** | {cells} |")
    return "\n".join(lines)


def problems(outcomes: dict[Pair, Outcome]) -> list[str]:
    lines = []
    for pair, outcome in sorted(outcomes.items(), key=lambda item: (item[1].status, item[0])):
        if outcome.status != VERIFIED:
            where = f" (example {outcome.example})" if outcome.example else ""
            lines.append(
                f"- {outcome.status}: `{pair[0]}?{pair[1]}`{where}: {_cell(outcome.reason)}"
            )
    return lines


KNOWN_GAPS = """## Known gaps

- Contained references (`#id`) are indexed by the reference as written only: R4 reaches them
  through `_contained`, which this server does not support, so pairs whose examples only hold such
  references are skipped. A relative reference that is neither `Type/id` nor absolute (a bare id
  written as a canonical) cannot be found by any query either.
- A composite component that is a text-only CodeableConcept cannot be searched: composites match
  tokens by `system|code` (the three `context-type-value` / `characteristic-value` skips).
- Index text columns hold 255 characters: strings are compared on their first 255 normalized
  characters, token codes and uris on their first 255 characters, so a longer search value also
  finds resources that differ only after them (the probes' near misses differ within them).
- One value of one example is probed per pair, with the forms listed in `probes.py`; other
  modifiers, prefixes, chains and `_has` are covered by `tests/functional/test_search.py`.
"""


def render(results: dict[str, dict[Pair, Outcome]], header: str) -> str:
    parts = [header, KNOWN_GAPS, "## Counts per parameter type", ""]
    for backend, outcomes in results.items():
        probed, verified = definitions(outcomes)
        parts += [
            summary(backend, outcomes),
            "",
            f"{verified} of the {probed} SearchParameter definitions with a value are verified "
            f"on every resource type they were probed on ({backend}).",
            "",
        ]
    listed = merged_problems(results)
    if listed:
        parts += ["## Not verified", "", *listed, ""]
    return "\n".join(parts).rstrip() + "\n"


def merged_problems(results: dict[str, dict[Pair, Outcome]]) -> list[str]:
    """Each backend's problems once, naming the backends when not all share it."""
    backends: dict[str, list[str]] = {}
    for backend, outcomes in results.items():
        for line in problems(outcomes):
            backends.setdefault(line, []).append(backend)
    return [
        line if len(names) == len(results) else f"{line} ({', '.join(names)} only)"
        for line, names in backends.items()
    ]


def _order(name: str) -> tuple[bool, str]:
    return name.startswith(":"), name


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")[:400]
