"""Search index values of a resource, computed at write time from the official expressions.

`extract(resource)` evaluates, for every search parameter of the resource's type (inherited
`_id`, `_lastUpdated`, `_tag`, `_security`, `_profile`, `_source` included), its FHIRPath
expression and converts each result by parameter type (one `convert_*` module per type). Each
expression is compiled once, on first use. A parameter whose expression starts at an element the
resource lacks (`Observation.component` on an Observation without `component`) is not evaluated.

Besides the values named by their parameter code, two derived token values support modifiers:
`<code>:of-type` (Identifier type + value, see `convert_token`) and `<code>:identifier`
(`Reference.identifier`, see `convert_reference`). Composite parameters give `CompositeValue`s.
`special` parameters (`near`, `_text`, `_content`, …) give nothing.

`meta.lastUpdated` is indexed as found: call `extract` on the resource as it will be stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from santinel.errors import FhirError
from santinel.fhir.search.convert_date import date_values
from santinel.fhir.search.convert_number import number_values, quantity_values
from santinel.fhir.search.convert_reference import reference_values, uri_values
from santinel.fhir.search.convert_string import string_values
from santinel.fhir.search.convert_token import token_values
from santinel.fhir.search.fhirpath import Node, compile_path, top_elements
from santinel.fhir.search.registry import SearchParam, params_for
from santinel.fhir.search.values import CompositeValue, ExtractedValue, IndexValue

Converter = Callable[[str, Node], Iterable[IndexValue]]
CONVERTERS: dict[str, Converter] = {
    "string": string_values,
    "token": token_values,
    "date": date_values,
    "number": number_values,
    "quantity": quantity_values,
    "reference": reference_values,
    "uri": uri_values,
}


@dataclass(frozen=True, slots=True)
class _Step:
    param: SearchParam
    expression: str
    roots: frozenset[str] | None  # top-level elements the expression reads; None: unknown


def extract(resource: Mapping[str, Any]) -> list[ExtractedValue]:
    """Every index value of `resource` (a FHIR resource as parsed JSON), without duplicates."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not params_for(resource_type):
        return []
    present = _present(resource)
    found: dict[ExtractedValue, None] = {}
    for step in _plan(resource_type):
        if step.roots is not None and step.roots.isdisjoint(present):
            continue
        for value in _checked(step, resource, resource_type):
            found[value] = None
    return list(found)


def extract_params(resource: Mapping[str, Any], codes: Iterable[str]) -> list[ExtractedValue]:
    """The index values of only the parameters `codes` (e.g. the ones that put a resource in a
    compartment), computed exactly as `extract` computes them for the index."""
    resource_type = resource.get("resourceType")
    wanted = frozenset(codes)
    if not isinstance(resource_type, str) or not wanted or not params_for(resource_type):
        return []
    found: dict[ExtractedValue, None] = {}
    for step in _plan(resource_type):
        if step.param.code in wanted:
            for value in _checked(step, resource, resource_type):
                found[value] = None
    return list(found)


def _checked(step: _Step, resource: Mapping[str, Any], resource_type: str) -> list[ExtractedValue]:
    try:
        return list(_evaluate(step, resource))
    except FhirError:
        raise
    except Exception as exc:  # the FHIRPath engine failing on valid data is our fault
        raise FhirError(
            f"The search parameter '{step.param.code}' of {resource_type} could not be "
            "evaluated on this resource."
        ) from exc


def precompile(resource_types: Iterable[str]) -> int:
    """Compile the expressions of these types ahead of the first writes; how many there are."""
    count = 0
    for resource_type in resource_types:
        for step in _plan(resource_type):
            compile_path(step.expression)
            for component in step.param.components:
                compile_path(component.expression)
            count += 1
    return count


def _evaluate(step: _Step, resource: Mapping[str, Any]) -> Iterator[ExtractedValue]:
    param = step.param
    nodes = compile_path(step.expression)(resource)
    if param.type != "composite":
        convert = CONVERTERS[param.type]
        for node in nodes:
            yield from convert(param.code, node)
        return
    variables = {"resource": resource}
    for node in nodes:
        parts: list[IndexValue] = []
        for component in param.components:
            convert = CONVERTERS[component.type]
            values = [
                value
                for item in compile_path(component.expression)(node.handle, variables)
                for value in convert(component.code, item)
                if value.param == component.code
            ]
            if not values:
                break
            parts.extend(values)
        else:
            yield CompositeValue(param.code, tuple(parts))


@cache
def _plan(resource_type: str) -> tuple[_Step, ...]:
    steps = []
    for param in params_for(resource_type).values():
        if param.expression is None or param.type == "special":
            continue
        if param.type != "composite" and param.type not in CONVERTERS:
            continue
        steps.append(_Step(param, param.expression, top_elements(param.expression, resource_type)))
    return tuple(steps)


def _present(resource: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for key in resource:
        names.update(_element_names(key))
    return names


@lru_cache(maxsize=4096)  # bounded: keys come from clients
def _element_names(key: str) -> tuple[str, ...]:
    """`valueQuantity` → (`valueQuantity`, `value`): a key and the choice elements it may be."""
    name = key.removeprefix("_")
    prefixes = [name[:i] for i in range(1, len(name)) if name[i].isupper()]
    return (name, *prefixes)
