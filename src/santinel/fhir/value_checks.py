"""Checks of values by their R4 type, which fhirkit leaves to servers: codes against the value set
of a `required` binding, and dates against the calendar.

The typed tree, the bindings and the expanded value sets come from `definitions/bindings.json`
(`scripts/generate_bindings.py`), compiled once into one dict per context (a resource, datatype or
backbone element) of only the keys that can lead to a check: one walk of the resource, one dict
lookup per key and one set lookup per code.

R4 `terminologies.html#required`: a `code` SHALL be in the value set; a `Coding` SHALL be one of
its (system, code) pairs; a `CodeableConcept` SHALL have at least one such coding (text alone, or
only codings from elsewhere, do not conform).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from santinel.errors import Issue
from santinel.fhir.calendar_dates import calendar_problem
from santinel.fhir.definitions import load

DATE_TYPES = frozenset({"date", "dateTime", "instant"})
LISTED_CODES = 8  # a diagnostic names the allowed codes when there are at most this many


@dataclass(frozen=True)
class Binding:
    path: str
    value_set: str
    codes: frozenset[str]  # for `code` elements
    pairs: frozenset[tuple[str, str]]  # (system, code), for Coding and CodeableConcept

    def allowed(self) -> str:
        listed = sorted(self.codes)
        if len(listed) > LISTED_CODES:
            return f"the value set {self.value_set}"
        return f"the value set {self.value_set} ({', '.join(listed)})"


# What a key of a context holds: (check, argument, context to descend into or None).
Entry = tuple[Callable[..., None] | None, Any, "str | None"]


@dataclass(frozen=True)
class Tables:
    contexts: dict[str, dict[str, Entry]]


def value_issues(resource: dict[str, Any]) -> list[Issue]:
    """Every bound code outside its value set and every date that is not in the calendar."""
    issues: list[Issue] = []
    contexts = _tables().contexts
    table = contexts.get(resource.get("resourceType", ""))
    if table is not None:
        _visit(resource, table, resource["resourceType"], contexts, issues)
    return issues


def _visit(
    node: dict[str, Any],
    table: dict[str, Entry],
    path: str,
    contexts: dict[str, dict[str, Entry]],
    issues: list[Issue],
) -> None:
    for key, value in node.items():
        entry = table.get(key)
        if entry is None:
            if key[:1] == "_" and value is not None:
                # A primitive's id and extensions (`_birthDate`): extensions may hold dates.
                _each(value, contexts["Element"], f"{path}.{key}", contexts, issues, None, None)
            continue
        check, argument, child = entry
        child_table = contexts[child] if child is not None else None
        _each(value, child_table, f"{path}.{key}", contexts, issues, check, argument)


def _each(
    value: Any,
    table: dict[str, Entry] | None,
    path: str,
    contexts: dict[str, dict[str, Entry]],
    issues: list[Issue],
    check: Callable[..., None] | None,
    argument: Any,
) -> None:
    items = enumerate(value) if isinstance(value, list) else ((None, value),)
    for index, item in items:
        where = path if index is None else f"{path}[{index}]"
        if check is not None:
            check(item, argument, where, issues)
        if isinstance(item, dict):
            if table is None and check is _resource:
                inner = contexts.get(item.get("resourceType", ""))
                if inner is not None:
                    _visit(item, inner, where, contexts, issues)
            elif table is not None:
                _visit(item, table, where, contexts, issues)


def _resource(_item: Any, _argument: Any, _where: str, _issues: list[Issue]) -> None:
    """Marks a contained resource: `_each` dispatches on its resourceType."""


def _date(item: Any, type_name: str, where: str, issues: list[Issue]) -> None:
    if isinstance(item, str):
        problem = calendar_problem(item)
        if problem is not None:
            issues.append(
                Issue(
                    code="value",
                    diagnostics=f"{where}: '{item[:40]}' is not a valid {type_name}: {problem}",
                    expression=(where,),
                )
            )


def _code(item: Any, binding: Binding, where: str, issues: list[Issue]) -> None:
    if isinstance(item, str) and item not in binding.codes:
        issues.append(_binding_issue(where, f"the code '{item[:64]}' is not in", binding))


def _coding(item: Any, binding: Binding, where: str, issues: list[Issue]) -> None:
    if isinstance(item, dict) and (item.get("system"), item.get("code")) not in binding.pairs:
        code = str(item.get("code"))[:64]
        issues.append(_binding_issue(where, f"the coding '{code}' is not from", binding))


def _concept(item: Any, binding: Binding, where: str, issues: list[Issue]) -> None:
    if not isinstance(item, dict):
        return
    codings = item.get("coding")
    if isinstance(codings, list) and any(
        isinstance(c, dict) and (c.get("system"), c.get("code")) in binding.pairs for c in codings
    ):
        return
    issues.append(_binding_issue(where, "no coding is from", binding))


def _binding_issue(where: str, problem: str, binding: Binding) -> Issue:
    return Issue(
        code="code-invalid",
        diagnostics=f"{where}: {problem} {binding.allowed()} (a required binding)",
        expression=(where,),
    )


CHECKS: dict[str, Callable[..., None]] = {"code": _code, "Coding": _coding}
CHECKS["CodeableConcept"] = _concept


@cache
def _tables() -> Tables:
    data = load("bindings.json")
    bindings: dict[str, Binding] = {}
    for path, (url, _type) in data["bindings"].items():
        systems: dict[str, list[str]] = data["valueSets"][url]
        pairs = frozenset((s, c) for s, codes in systems.items() for c in codes)
        bindings[path] = Binding(path, url, frozenset(c for _s, c in pairs), pairs)
    contexts: dict[str, dict[str, Entry]] = {}
    for context, keys in data["elements"].items():
        table: dict[str, Entry] = {}
        for key, target in keys.items():
            table[key] = _entry(target, bindings, data["bindings"])
        contexts[context] = table
    # A primitive's `_value` part is an Element: only its extensions can hold something to check.
    contexts.setdefault("Element", {"extension": (None, None, "Extension")})
    for table in contexts.values():  # drop descents into contexts with nothing to check
        for key, (check, argument, child) in list(table.items()):
            if child is not None and child not in contexts:
                table[key] = (check, argument, None)
    return Tables(contexts)


def _entry(target: str, bindings: dict[str, Binding], types: dict[str, list[str]]) -> Entry:
    if target in DATE_TYPES:
        return (_date, target, None)
    if target == "Resource":
        return (_resource, None, None)
    if target in bindings:
        kind = types[target][1]
        # A bound Coding or CodeableConcept is also walked (its extensions may hold dates).
        return (CHECKS[kind], bindings[target], None if kind == "code" else kind)
    return (None, None, target)
