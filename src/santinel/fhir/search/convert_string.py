"""String index values (R4 `search.html#string`): from string-like primitives, HumanName and
Address. Each name or address part is one value, so `name=jean` matches a given name alone."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from santinel.fhir.search.fhirpath import Node
from santinel.fhir.search.normalize import normalize
from santinel.fhir.search.values import StringValue

NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def string_value(param: str, text: str) -> StringValue | None:
    normalized = normalize(text)
    return StringValue(param, normalized, text) if normalized else None


def string_values(param: str, node: Node) -> Iterator[StringValue]:
    data = node.data
    if isinstance(data, str):
        value = string_value(param, data)
        if value is not None:
            yield value
        return
    if not isinstance(data, Mapping):
        return
    kind = node.type
    if kind is None:
        kind = "HumanName" if "family" in data or "given" in data else "Address"
    parts = NAME_PARTS if kind == "HumanName" else ADDRESS_PARTS if kind == "Address" else ()
    for part in parts:
        yield from _texts(param, data.get(part))


def _texts(param: str, item: Any) -> Iterator[StringValue]:
    for text in item if isinstance(item, list) else [item]:
        if isinstance(text, str):
            value = string_value(param, text)
            if value is not None:
                yield value
