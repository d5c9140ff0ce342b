"""A small typed face of fhirpathpy for search index extraction.

Expressions are compiled once (`compile_path` is cached) against the R4 model, without which
choice types (`value.ofType(Quantity)`) silently yield nothing. Results come back as `Node`s that
keep the FHIR type fhirpathpy inferred (`HumanName`, `dateTime`, `Quantity`, …), so converters
need not guess from the JSON shape.

`resolve()` is not implemented by fhirpathpy; the official expressions use it only as
`reference.where(resolve() is Patient)`. It is supplied here as a function returning, for each
Reference, a stub `{"resourceType": T, "id": id}` whose type comes from the literal reference
(`Patient/1`, `Patient/1/_history/2`, `https://host/fhir/Patient/1`) or else from `Reference.type`.
Nothing is fetched: `is Patient` tests that type. References with neither (contained `#id`,
`urn:uuid:`, identifier-only without `type`) resolve to nothing, so such a reference is indexed
under `subject` but not under `patient`.

Speed: fhirpathpy costs 50 to 100 µs per evaluation. 98 % of the official expressions are plain
navigation chains (`Observation.component.value.ofType(Quantity)`, `….where(resolve() is
Patient)`, `….where(system='phone')`, unions of those): they are evaluated by `_Chain`, a
direct walk of the JSON that follows fhirpathpy's own rules and model (choice types, types of
each path, type hierarchy), about 10 times faster. The rest go to fhirpathpy. Tests check both
give the same results on every official example.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any, NamedTuple, cast

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from santinel.fhir.search.registry import resource_types

R4_MODEL: Any = models["r4"]
# fhirpathpy's node class (untyped): `make_node(data, path)`; a resource's path is its type.
make_node = cast(Callable[[Any, str | None], Any], ResourceNode)
SYSTEM_TYPES = {
    "String": "string",
    "Boolean": "boolean",
    "Integer": "integer",
    "Decimal": "decimal",
    "Date": "date",
    "DateTime": "dateTime",
    "Time": "time",
    "Quantity": "Quantity",
}
REFERENCE = re.compile(
    r"(?:(?P<base>https?://\S+?)/)?(?P<type>[A-Z][A-Za-z]{1,63})/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?"
)


class Node(NamedTuple):
    """One FHIRPath result: its FHIR type when known (None for backbone elements), its JSON data,
    and the engine's node (to evaluate relative expressions on it, e.g. composite components).
    A named tuple: thousands are made per Bundle, and a tuple is the cheapest to make."""

    type: str | None
    data: Any
    handle: Any


def literal_target(reference: str) -> tuple[str, str] | None:
    """(type, id) of a relative or absolute literal reference; None for `#x`, `urn:…` and others."""
    match = REFERENCE.fullmatch(reference)
    if match is None or match.group("type") not in _known_types():
        return None
    return match.group("type"), match.group("id")


@cache
def _known_types() -> frozenset[str]:
    return frozenset(resource_types())


def _resolve(references: list[Any]) -> list[Any]:
    stubs: list[Any] = []
    for reference in references:
        target = _resolved_target(reference)
        if target is not None:
            stubs.append(make_node({"resourceType": target[0], "id": target[1]}, None))
    return stubs


def _resolved_target(reference: Any) -> tuple[str, str] | None:
    """(type, id) `resolve()` gives for a Reference: its literal target, or its `type`."""
    if not isinstance(reference, Mapping):
        return None
    literal = reference.get("reference")
    target = literal_target(literal) if isinstance(literal, str) else None
    if target is None and isinstance(reference.get("type"), str):
        target = (reference["type"], "")
    return target


OPTIONS: dict[str, Any] = {
    "returnRawData": True,
    "userInvocationTable": {"resolve": {"fn": _resolve}},
}


class CompiledPath:
    """A compiled FHIRPath expression; call it on a resource (dict) or on a `Node`'s handle.
    `fast=False` forces fhirpathpy (the reference the fast walk is tested against)."""

    __slots__ = ("_chains", "_function", "expression")

    def __init__(self, expression: str, *, fast: bool = True) -> None:
        self.expression = expression
        self._chains = _parse_chains(expression) if fast else None
        self._function: Callable[..., list[Any]] | None = (
            fhirpathpy.compile(expression, R4_MODEL, OPTIONS) if self._chains is None else None
        )

    @property
    def is_fast(self) -> bool:
        return self._chains is not None

    def __call__(self, target: Any, variables: Mapping[str, Any] | None = None) -> list[Node]:
        if self._function is not None:
            if isinstance(target, _Item):  # a node of the fast walk (a composite's element)
                target = make_node(target.data, target.path)
            return [_node(item) for item in self._function(target, dict(variables or {}))]
        start = _start(target)
        return [
            Node(_type_name(item.path, item.data), item.data, item)
            for chain in self._chains or ()
            for item in chain.walk(start)
        ]


@cache
def compile_path(expression: str) -> CompiledPath:
    """The compiled expression, built on first use and shared afterwards."""
    return CompiledPath(expression)


def top_elements(expression: str, resource_type: str) -> frozenset[str] | None:
    """The top-level JSON keys a navigation expression starts from (`Observation.status` →
    `status`; of a choice element, only the types it keeps: `Observation.value.ofType(Quantity)`
    → `valueQuantity`): without one of them it yields nothing. None when that cannot be told (the
    expression is the resource itself, or is not plain navigation: `deceased.exists()` is true or
    false whether `deceased` is there or not)."""
    chains = _parse_chains(expression)
    if chains is None:
        return None
    keys: set[str] = set()
    for chain in chains:
        steps = chain.steps
        if steps[0][1] == resource_type:
            steps = steps[1:]
        if not steps or steps[0][0] != "name" or steps[0][1][:1].isupper():
            return None
        name = steps[0][1]
        kept = set()
        if len(steps) > 1 and steps[1][0] == "of_type":  # as the walk filters them
            kept = {
                key for key, path in _child_keys(resource_type, name) if _is_type(path, steps[1][1])
            }
        keys |= kept or {name}
    return frozenset(keys)


# --- the fast walk ------------------------------------------------------------------------------
STEP = re.compile(
    r"(?:ofType\((?P<of_type>\w+)\)"
    r"|where\(resolve\(\) is (?P<resolves_to>\w+)\)"
    r"|where\((?P<field>\w+) ?= ?'(?P<literal>[^'\\]*)'\)"
    r"|(?P<name>\w+))(?:\.|$)"
)
PATHS_ELSEWHERE: Mapping[str, str] = R4_MODEL["pathsDefinedElsewhere"]
CHOICES: Mapping[str, list[str]] = R4_MODEL["choiceTypePaths"]
PATH_TYPES: Mapping[str, str] = R4_MODEL["path2Type"]
PARENTS: Mapping[str, str] = R4_MODEL["type2Parent"]
Step = tuple[str, str, str]  # (kind, argument, literal)


class _Chain:
    """A navigation chain: element names, `ofType(T)`, `where(resolve() is T)`,
    `where(element = 'literal')`, starting at the resource type or at the context node."""

    __slots__ = ("_after_root", "_root", "steps")

    def __init__(self, steps: tuple[Step, ...]) -> None:
        self.steps = steps
        first = steps[0]
        # `Observation.…` starts at the resource, if it is one of that type
        self._root = first[1] if first[0] == "name" and first[1][:1].isupper() else None
        self._after_root = steps[1:] if self._root else steps

    def walk(self, start: _Item) -> list[_Item]:
        items = [start]
        if self._root is not None and (
            not isinstance(start.data, Mapping) or start.data.get("resourceType") != self._root
        ):
            return []
        for kind, argument, literal in self._after_root:
            if kind == "name":
                items = (
                    _children(items[0], argument)  # the usual case: one element to descend
                    if len(items) == 1
                    else [child for item in items for child in _children(item, argument)]
                )
            elif kind == "of_type":
                items = [item for item in items if _is_type(item.path, argument)]
            elif kind == "resolves_to":
                items = [item for item in items if _resolves_to(item.data, argument)]
            else:
                items = [item for item in items if _field_equals(item, argument, literal)]
            if not items:
                break
        return items


def _parse_chains(expression: str) -> tuple[_Chain, ...] | None:
    chains = []
    for part in expression.split(" | "):
        steps: list[Step] = []
        position = 0
        while position < len(part):
            match = STEP.match(part, position)
            if match is None:
                return None
            kind = next(k for k in ("of_type", "resolves_to", "field", "name") if match[k])
            steps.append((kind, match[kind], match["literal"] or ""))
            position = match.end()
        if not steps or part.endswith("."):
            return None
        chains.append(_Chain(tuple(steps)))
    return tuple(chains)


class _Item:
    """A node of the fast walk: JSON data and its path in the model (what fhirpathpy's
    `ResourceNode` keeps, without its cost: the walk makes one per element it visits)."""

    __slots__ = ("data", "path")

    def __init__(self, data: Any, path: str | None) -> None:
        self.data = data
        self.path = path


def _item(data: Any, path: str | None) -> _Item:
    # as `ResourceNode`: a (contained) resource's path is its type
    if isinstance(data, dict) and "resourceType" in data:
        return _Item(data, data["resourceType"])
    return _Item(data, path)


def start_node(resource: Any) -> _Item:
    """`resource` as the node fast expressions start from (made once, for all of them)."""
    return _item(resource, None)


def _start(target: Any) -> _Item:
    if isinstance(target, _Item):
        return target
    if isinstance(target, ResourceNode):
        return _Item(target.data, target.path)
    return _item(target, None)


@lru_cache(maxsize=4096)  # bounded: a contained resource's type comes from the client
def _child_keys(parent: str | None, name: str) -> tuple[tuple[str, str], ...]:
    """Where element `name` of a `parent`-typed node may be: (JSON key, its path in the model)
    in the order fhirpathpy tries them (`value` → `valueQuantity`, `valueString`, …)."""
    path = f"{parent}.{name}"
    path = PATHS_ELSEWHERE.get(path, path)
    choices = CHOICES.get(path)
    if choices is not None:
        return tuple((name + c, PATH_TYPES.get(path + c, path + c)) for c in choices)
    if name == "extension":
        path = "Extension"
    return ((name, PATH_TYPES.get(path, path)),)


def _children(item: _Item, name: str) -> list[_Item]:
    data = item.data
    if not isinstance(data, dict) and not isinstance(data, Mapping):  # dict: no ABC check
        return []
    for key, path in _child_keys(item.path, name):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, list):
            return [_item(v, path) for v in value if v is not None]
        return [_item(value, path)]
    return []


def _is_type(path: str | None, wanted: str) -> bool:
    if path is None:
        return False
    if path.startswith("System."):
        return path[7:] == wanted
    name: str | None = "BackboneElement" if "." in path else path
    while name:
        if name == wanted:
            return True
        name = PARENTS.get(name) or PATH_TYPES.get(name)
    return False


def _resolves_to(reference: Any, wanted: str) -> bool:
    target = _resolved_target(reference)
    return target is not None and _is_type(target[0], wanted)


def _field_equals(item: _Item, field: str, literal: str) -> bool:
    values = _children(item, field)
    return len(values) == 1 and values[0].data == literal


def _node(item: Any) -> Node:
    if isinstance(item, ResourceNode):
        return Node(_type_name(item.path, item.data), item.data, item)
    return Node(_primitive_type(item), item, item)


def _type_name(path: Any, data: Any) -> str | None:
    if not isinstance(path, str):
        return _primitive_type(data)
    if path.startswith("System."):
        return SYSTEM_TYPES.get(path[7:])
    if "." in path:
        return None  # a backbone element such as `Observation.component`
    return path


def _primitive_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float | Decimal):
        return "decimal"
    if isinstance(value, str):
        return "string"
    return None
