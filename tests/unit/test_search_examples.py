"""Index extraction over every official R4 example: no failure, wide coverage, fast enough, and
the fast navigation walk agrees with fhirpathpy on every expression it takes over."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from santinel.fhir.search import registry
from santinel.fhir.search.extract import extract, extract_params
from santinel.fhir.search.fhirpath import CompiledPath, Node, compile_path, top_elements

Example = tuple[str, int, dict[str, Any]]  # file name, size in bytes, resource
# The fhirpathpy comparison (slow) takes the first examples of each type, big ones excepted.
SMALL = 20_000  # bytes
PER_TYPE = 40


@pytest.fixture(scope="module")
def examples(fhir_examples: Path) -> list[Example]:
    """Every resource of the package (one per file; Bundle entries are left in their Bundle)."""
    found: list[Example] = []
    for path in sorted(fhir_examples.glob("*.json")):
        raw = path.read_bytes()
        data = orjson.loads(raw)
        if isinstance(data, dict) and isinstance(data.get("resourceType"), str):
            found.append((path.name, len(raw), data))
    assert len(found) > 5_000
    return found


def test_every_example_is_indexed(examples: list[Example]) -> None:
    produced: Counter[tuple[str, str]] = Counter()
    seen_types: Counter[str] = Counter()
    timings: list[float] = []
    for _name, _size, resource in examples:
        start = time.perf_counter()
        found = extract(resource)
        timings.append(time.perf_counter() - start)
        seen_types[resource["resourceType"]] += 1
        for value in found:
            produced[resource["resourceType"], value.param] += 1

    per_type: dict[str, tuple[int, int]] = {}
    for resource_type in seen_types:
        indexable = [p for p in registry.params_for(resource_type).values() if p.type != "special"]
        with_values = [p for p in indexable if (resource_type, p.code) in produced]
        per_type[resource_type] = (len(with_values), len(indexable))
    distinct = sum(with_values for with_values, _ in per_type.values())
    median = statistics.median(timings) * 1000
    print(f"\n{len(examples)} resources of {len(seen_types)} types: {distinct} (type, param) pairs")
    print(f"indexed in {sum(timings):.2f} s (compiling included), median {median:.3f} ms each")
    for resource_type, (with_values, total) in sorted(per_type.items()):
        examples_seen = seen_types[resource_type]
        print(f"  {resource_type:40} {with_values:3}/{total:3}  ({examples_seen} examples)")
    assert distinct >= 1_500
    assert len(seen_types) >= 140
    assert median < 5.0


def test_the_fast_walk_agrees_with_fhirpathpy(examples: list[Example]) -> None:
    reference: dict[str, CompiledPath] = {}
    compared: Counter[bool] = Counter()
    mismatches: dict[str, str] = {}
    per_type: Counter[str] = Counter()
    for name, size, resource in examples:
        resource_type = resource["resourceType"]
        per_type[resource_type] += 1
        if size > SMALL or per_type[resource_type] > PER_TYPE:
            continue
        for param in registry.params_for(resource_type).values():
            if param.expression is None or param.type == "special":
                continue
            fast = compile_path(param.expression)
            if not fast.is_fast:
                compared[False] += 1
                continue
            tops = top_elements(param.expression, resource_type)
            if tops is not None and not any(
                key.lstrip("_").startswith(tuple(tops)) for key in resource
            ):
                continue  # nothing to walk: both give nothing
            nodes = fast(resource)
            slow = _reference(reference, param.expression)
            typed = " | " not in param.expression  # fhirpathpy's union drops the types
            compared[True] += 1
            if _key(nodes, typed) != _key(slow(resource), typed):
                mismatches.setdefault(param.expression, name)
            for component in param.components:
                fast_part = compile_path(component.expression)
                slow_part = _reference(reference, component.expression)
                if not fast_part.is_fast:
                    continue
                part_typed = " | " not in component.expression
                for node in nodes:
                    expected = _key(slow_part(node.handle), part_typed)
                    if _key(fast_part(node.handle), part_typed) != expected:
                        mismatches.setdefault(component.expression, name)
    print(
        f"\nfast walk vs fhirpathpy: {compared[True]} evaluations compared, {compared[False]} left"
    )
    assert not mismatches
    assert compared[True] > 10 * compared[False]


def _reference(cache: dict[str, CompiledPath], expression: str) -> CompiledPath:
    if expression not in cache:
        cache[expression] = CompiledPath(expression, fast=False)
    return cache[expression]


def _key(nodes: list[Node], typed: bool) -> list[tuple[str, bytes]]:
    """The results as a set (fhirpathpy's union removes duplicates), types compared if `typed`."""
    found = {
        (str(node.type) if typed else "", orjson.dumps(node.data, option=orjson.OPT_SORT_KEYS))
        for node in nodes
    }
    return sorted(found)


def test_skipping_absent_elements_loses_no_value(examples: list[Example]) -> None:
    """`extract` evaluates only the parameters whose top-level elements the resource has (of a
    choice element, only the types kept: `value.ofType(Quantity)` needs `valueQuantity`; a
    composite on the resource needs every component's): the same values as evaluating all."""
    for name, _size, resource in examples:
        every = registry.params_for(resource["resourceType"])
        assert set(extract(resource)) == set(extract_params(resource, every)), name
