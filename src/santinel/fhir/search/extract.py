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

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from santinel.errors import FhirError
from santinel.fhir.search.convert_date import date_values
from santinel.fhir.search.convert_number import number_values, quantity_values
from santinel.fhir.search.convert_reference import reference_values, uri_values
from santinel.fhir.search.convert_string import string_values
from santinel.fhir.search.convert_token import token_values
from santinel.fhir.search.fhirpath import (
    CompiledPath,
    Node,
    compile_path,
    start_node,
    top_elements,
)
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
    # the top-level keys it needs: one of each set must be present (None: nothing is known)
    roots: tuple[frozenset[str], ...] | None
    path: CompiledPath
    fast: bool  # `path` is walked (it starts from `start_node`), not run by fhirpathpy
    convert: Converter | None  # None: a composite (its components convert)


def extract(resource: Mapping[str, Any]) -> list[ExtractedValue]:
    """Every index value of `resource` (a FHIR resource as parsed JSON), without duplicates."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not params_for(resource_type):
        return []
    start = start_node(resource)  # where the fast walks start, made once
    found: dict[ExtractedValue, None] = {}
    for step in _steps_for(resource_type, tuple(resource)):
        target = start if step.fast else resource
        for value in _checked(step, target, resource, resource_type):
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
            for value in _checked(step, resource, resource, resource_type):
                found[value] = None
    return list(found)


def _checked(
    step: _Step, target: Any, resource: Mapping[str, Any], resource_type: str
) -> list[ExtractedValue]:
    """The values of one parameter; `target`: the resource, or its fast-walk start node."""
    try:
        return _evaluate(step, target, resource)
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


def _evaluate(step: _Step, target: Any, resource: Mapping[str, Any]) -> list[ExtractedValue]:
    param = step.param
    nodes = step.path(target)
    convert = step.convert
    if convert is not None:
        code = param.code
        return [value for node in nodes for value in convert(code, node)]
    found: list[ExtractedValue] = []
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
            found.append(CompositeValue(param.code, tuple(parts)))
    return found


@cache
def _plan(resource_type: str) -> tuple[_Step, ...]:
    steps = []
    for param in params_for(resource_type).values():
        if param.expression is None or param.type == "special":
            continue
        if param.type != "composite" and param.type not in CONVERTERS:
            continue
        convert = CONVERTERS.get(param.type)
        roots = _roots(param, param.expression, resource_type)
        path = compile_path(param.expression)
        steps.append(_Step(param, param.expression, roots, path, path.is_fast, convert))
    return tuple(steps)


@lru_cache(maxsize=4096)  # bounded: the keys come from clients (validated elements, though)
def _steps_for(resource_type: str, keys: tuple[str, ...]) -> tuple[_Step, ...]:
    """The parameters worth evaluating on a resource with these top-level keys: resources of a
    kind share a few shapes, so the test of each parameter's roots is made once per shape."""
    present = {name for key in keys for name in _element_names(key)}
    return tuple(
        step
        for step in _plan(resource_type)
        if step.roots is None or not any(needed.isdisjoint(present) for needed in step.roots)
    )


def _roots(
    param: SearchParam, expression: str, resource_type: str
) -> tuple[frozenset[str], ...] | None:
    """What a parameter needs at the top of a resource to give any value. A composite on the
    resource itself (`Observation` with components `code` and `value.ofType(Quantity)`) gives
    values only when every component does: it needs the top-level keys of each."""
    roots = top_elements(expression, resource_type)
    if roots is not None:
        return (roots,)
    if param.type != "composite" or expression != resource_type:
        return None
    components = [
        top_elements(c.expression, resource_type) if c.expression else None
        for c in param.components
    ]
    if not components or any(keys is None for keys in components):
        return None
    return tuple(keys for keys in components if keys is not None)


@lru_cache(maxsize=4096)  # bounded: keys come from clients
def _element_names(key: str) -> tuple[str, ...]:
    """`valueQuantity` → (`valueQuantity`, `value`): a key and the choice elements it may be."""
    name = key.removeprefix("_")
    prefixes = [name[:i] for i in range(1, len(name)) if name[i].isupper()]
    return (name, *prefixes)
