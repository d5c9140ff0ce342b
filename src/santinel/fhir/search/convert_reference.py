"""Reference and uri index values (R4 `search.html#reference`, `#uri`).

A literal reference `Type/id` (also `Type/id/_history/n`, or an absolute URL ending so) is
indexed with its target type and id, and the reference as written in `url`. Contained (`#id`),
`urn:uuid:`/`urn:oid:` and other references keep `url` only, as do canonical and uri values of
reference parameters, unless relative (`Library/x`, `Library/x|1.0` also get a target type and
id). `Reference.identifier` gives one more token under `<code>:identifier` (system, value), which
serves the `:identifier` modifier.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from santinel.fhir.search.fhirpath import Node, literal_target
from santinel.fhir.search.values import ReferenceValue, TokenValue, UriValue

IDENTIFIER = ":identifier"


def reference_values(param: str, node: Node) -> Iterator[ReferenceValue | TokenValue]:
    data = node.data
    if isinstance(data, str):  # canonical or uri
        if data:
            target_type, target_id = _relative_target(data) or (None, None)
            yield ReferenceValue(param, target_type, target_id, data)
        return
    if not isinstance(data, Mapping) or "resourceType" in data:
        return  # e.g. `Bundle.entry[0].resource`: a resource, not a reference
    literal = data.get("reference")
    if isinstance(literal, str) and literal:
        target = literal_target(literal)
        if target is None:
            yield ReferenceValue(param, None, None, literal)
        else:
            yield ReferenceValue(param, target[0], target[1], literal)
    identifier = data.get("identifier")
    if isinstance(identifier, Mapping):
        system, value = _text(identifier.get("system")), _text(identifier.get("value"))
        if value is not None:
            yield TokenValue(param + IDENTIFIER, system, value)


def _relative_target(canonical: str) -> tuple[str, str] | None:
    """`Library/x` (also `Library/x|1.0`), as the examples write canonicals, is a literal
    reference too: `depends-on=Library/x` finds it. Absolute canonicals are matched by url."""
    if "://" in canonical:
        return None
    return literal_target(canonical.partition("|")[0])


def uri_values(param: str, node: Node) -> Iterator[UriValue]:
    if isinstance(node.data, str) and node.data:
        yield UriValue(param, node.data)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
