"""Which official examples to load so that every (resource type, search parameter) with a value on
some example is covered by one of them, and which value of it to query.

Candidates are the package's resources: each file's, and the entries of its Bundles that have an
id of their own (a resource found both ways keeps the file's version). Each is extracted once,
as the server will store it (with a `meta.lastUpdated`), and a greedy set cover keeps few of
them: about 260 examples cover the ~1,650 pairs, instead of PUTting all 5,300 files.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from santinel.fhir.search import registry
from santinel.fhir.search.extract import extract
from santinel.fhir.search.values import DateValue, ExtractedValue
from tests.conformance.probes import Probe, probes

Pair = tuple[str, str]  # (resource type, parameter code or derived `code:modifier`)
Key = tuple[str, str]  # (resource type, id)
DERIVED = (":identifier", ":of-type")
# Larger files are the specification's own definition Bundles (every ValueSet, StructureDefinition
# …) and a few huge terminology resources; larger Bundles hold definitions too. They bring no pair
# that the other examples lack, and would cost a minute to parse, extract and validate.
MAX_EXAMPLE_BYTES = 1_000_000
MAX_BUNDLE_ENTRIES = 100


@dataclass(frozen=True)
class Example:
    key: Key
    source: str  # file name, `#entry[i]` for a Bundle entry
    resource: dict[str, Any]


@dataclass
class Plan:
    examples: dict[Key, Example]
    candidates: dict[Pair, list[Key]]  # the examples with a value a query can express
    unusable: dict[Pair, str]  # pairs with values but none a query can express: why
    indexable: int  # (type, parameter) pairs of the registry that can have values

    def chosen(self, rejected: set[Key], stored: set[Key]) -> dict[Pair, Key]:
        """One example per pair: none of the `rejected` ones, an already `stored` one if it
        serves, else as few new ones as can be."""
        usable = {p: [k for k in keys if k not in rejected] for p, keys in self.candidates.items()}
        done = {p: next((k for k in keys if k in stored), None) for p, keys in usable.items()}
        kept = {p: k for p, k in done.items() if k is not None}
        return kept | cover({p: keys for p, keys in usable.items() if p not in kept})


def load_plan(folder: Path) -> Plan:
    examples = {e.key: e for e in _examples(folder)}
    candidates: dict[Pair, list[Key]] = {}
    unusable: dict[Pair, str] = {}
    for example in examples.values():
        for pair, found in _pairs(example.resource):
            if isinstance(found, str):
                unusable.setdefault(pair, found)
            else:
                candidates.setdefault(pair, []).append(example.key)
    for pair in candidates:
        unusable.pop(pair, None)
    return Plan(examples, candidates, unusable, _indexable())


def cover(candidates: dict[Pair, list[Key]]) -> dict[Pair, Key]:
    """Greedy set cover: take the example covering most uncovered pairs, until none is left
    (lazily: a gain popped from the heap is recomputed, and kept if still the largest)."""
    by_example: dict[Key, set[Pair]] = {}
    for pair, keys in candidates.items():
        for key in keys:
            by_example.setdefault(key, set()).add(pair)
    heap = [(-len(pairs), key) for key, pairs in by_example.items()]
    heapq.heapify(heap)
    uncovered = set(candidates)
    chosen: dict[Pair, Key] = {}
    while heap and uncovered:
        _, key = heapq.heappop(heap)
        gained = by_example[key] & uncovered
        if heap and len(gained) < -heap[0][0]:
            heapq.heappush(heap, (-len(gained), key))
            continue
        for pair in gained:
            chosen[pair] = key
        uncovered -= gained
    return chosen


def pick(resource_type: str, pair: Pair, values: Iterable[ExtractedValue]) -> list[Probe] | str:
    """The probes of the first value of `pair` a query can express (short ones first), or why
    none can be."""
    mine = sorted((v for v in values if v.param == pair[1]), key=lambda v: len(str(v)) > 300)
    dates = [v for v in mine if isinstance(v, DateValue)]
    span = (min(v.start for v in dates), max(v.end for v in dates)) if dates else None
    reason = "no value"
    for value in mine:
        found = probes(resource_type, pair[1], value, span)
        if not isinstance(found, str):
            return found
        reason = found
    return reason


def stored_form(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as the server keeps it, for planning: with a `meta.lastUpdated`."""
    meta = {**resource.get("meta", {}), "lastUpdated": "2020-01-01T00:00:00Z"}
    return {**resource, "meta": meta}


def _pairs(resource: dict[str, Any]) -> Iterator[tuple[Pair, list[Probe] | str]]:
    resource_type = resource["resourceType"]
    by_param: dict[str, list[ExtractedValue]] = {}
    for value in extract(stored_form(resource)):
        by_param.setdefault(value.param, []).append(value)
    for code, values in sorted(by_param.items()):
        if _known(resource_type, code):
            pair = (resource_type, code)
            yield pair, pick(resource_type, pair, values)


def _known(resource_type: str, code: str) -> bool:
    base = code.removesuffix(DERIVED[0]).removesuffix(DERIVED[1])
    return registry.param(resource_type, base) is not None


def _examples(folder: Path) -> Iterator[Example]:
    entries: list[Example] = []
    seen: set[Key] = set()
    for path in sorted(folder.glob("*.json")):
        if path.stat().st_size > MAX_EXAMPLE_BYTES:
            continue
        data = orjson.loads(path.read_bytes())
        if not _identified(data) or (data["resourceType"], data["id"]) in seen:
            continue
        key = (data["resourceType"], data["id"])
        seen.add(key)
        yield Example(key, path.name, data)
        entries.extend(_entries(path.name, data))
    for entry in entries:
        if entry.key not in seen:
            seen.add(entry.key)
            yield entry


def _entries(name: str, bundle: dict[str, Any]) -> Iterator[Example]:
    entries = bundle.get("entry") or ()
    if bundle["resourceType"] != "Bundle" or len(entries) > MAX_BUNDLE_ENTRIES:
        return
    for n, entry in enumerate(entries):
        resource: Any = entry.get("resource") if isinstance(entry, dict) else None
        if _identified(resource):
            key = (resource["resourceType"], resource["id"])
            yield Example(key, f"{name}#entry[{n}]", resource)


def _identified(data: Any) -> bool:
    """A resource with a type and an id (it can be PUT)."""
    if not isinstance(data, dict):
        return False
    return isinstance(data.get("resourceType"), str) and isinstance(data.get("id"), str)


def _indexable() -> int:
    return sum(
        1
        for resource_type in registry.resource_types()
        for p in registry.params_for(resource_type).values()
        if p.type != "special"
    )
