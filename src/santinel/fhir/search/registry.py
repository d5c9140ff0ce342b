"""The official R4 search parameters and compartments, from the generated definitions.

`search_parameters.json` holds every SearchParameter of the R4 specification per base type, its
FHIRPath expression already restricted to that type (multi-base definitions such as
`clinical-patient` are split) and made evaluable by fhirpathpy (`as` rewritten to `ofType()`).
Parameters of `Resource` (`_id`, `_lastUpdated`, `_tag`, …) apply to every resource type, those
of `DomainResource` (`_text`) to every type but Bundle, Binary and Parameters.

Parameters that cannot be indexed (`near`, `_text`, `_content`, `_query`, `_filter`, `_has`,
`_list`, `_type`) have type `special` and no expression.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any, Literal, cast

from santinel.fhir.definitions import load

ParamType = Literal[
    "string", "token", "date", "number", "quantity", "reference", "uri", "composite", "special"
]
INHERITED = ("Resource", "DomainResource")


@dataclass(frozen=True)
class Component:
    """One part of a composite parameter: the component parameter's code and type, and the
    expression evaluated relative to each element the composite's own expression selects."""

    code: str
    type: ParamType
    expression: str
    url: str


@dataclass(frozen=True)
class SearchParam:
    code: str
    type: ParamType
    expression: str | None  # None for `special` parameters
    targets: tuple[str, ...]  # resource types a reference parameter may point to
    components: tuple[Component, ...]  # composite parameters only
    url: str
    base: tuple[str, ...]  # the definition's base types (several for e.g. `clinical-patient`)
    multiple_or: bool | None = None
    multiple_and: bool | None = None
    comparators: tuple[str, ...] = ()
    modifiers: tuple[str, ...] = ()


def _data() -> Mapping[str, Any]:
    return cast(Mapping[str, Any], load("search_parameters.json"))


def _compartments() -> Mapping[str, Mapping[str, list[str]]]:
    return cast(Mapping[str, Mapping[str, list[str]]], load("compartments.json"))


def resource_types() -> tuple[str, ...]:
    """Every concrete R4 resource type."""
    return tuple(_data()["resourceTypes"])


def definition_count() -> int:
    """How many SearchParameter definitions were loaded (several bases count once)."""
    return int(_data()["count"])


EMPTY: Mapping[str, SearchParam] = MappingProxyType({})


def params_for(resource_type: str) -> Mapping[str, SearchParam]:
    """Code → parameter for a resource type, inherited ones included; empty for unknown types."""
    if resource_type not in _data()["resourceTypes"]:
        return EMPTY  # not cached: the name may come from a client
    return _params_for(resource_type)


@cache
def _params_for(resource_type: str) -> Mapping[str, SearchParam]:
    data = _data()
    parent = data["resourceTypes"][resource_type]
    bases = ["Resource"] + (["DomainResource"] if parent == "DomainResource" else [])
    found: dict[str, SearchParam] = {}
    for base in [*bases, resource_type]:
        for code, entry in data["params"].get(base, {}).items():
            found[code] = _param(code, base, entry)
    return MappingProxyType(found)


def param(resource_type: str, code: str) -> SearchParam | None:
    return params_for(resource_type).get(code)


def _param(code: str, base: str, entry: Mapping[str, Any]) -> SearchParam:
    data = _data()
    targets = entry.get("target", ())
    if targets == "*":
        targets = data["anyTarget"]
    return SearchParam(
        code=code,
        type=entry["type"],
        expression=entry.get("expression"),
        targets=tuple(targets),
        components=tuple(
            Component(c["code"], c["type"], c["expression"], c["url"])
            for c in entry.get("component", ())
        ),
        url=entry["url"],
        base=tuple(data["bases"].get(entry["url"], (base,))),
        multiple_or=entry.get("multipleOr"),
        multiple_and=entry.get("multipleAnd"),
        comparators=tuple(entry.get("comparator", ())),
        modifiers=tuple(entry.get("modifier", ())),
    )


def compartments() -> tuple[str, ...]:
    """The compartment types: `Patient`, `Encounter`, `RelatedPerson`, `Practitioner`, `Device`."""
    return tuple(_compartments())


def compartment_params(compartment: str, resource_type: str) -> tuple[str, ...]:
    """The parameters whose reference to a `compartment` resource puts a `resource_type` resource
    in that compartment (`Patient`, `Observation` → `subject`, `performer`); empty if none."""
    return tuple(_compartments().get(compartment, {}).get(resource_type, ()))


def resource_types_in_compartment(compartment: str) -> tuple[str, ...]:
    """The resource types that can be members of a compartment (`Patient` → `Observation`, …)."""
    return tuple(_compartments().get(compartment, {}))
