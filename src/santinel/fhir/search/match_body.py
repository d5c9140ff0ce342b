"""Whether a resource body matches simple search criteria, without the database, no I/O.

This serves SMART v2 scope restrictions (`patient/Observation.cu?category=…|laboratory`) on
writes, where the body to judge is not stored yet. Values come from the index extraction
(`extract_params`) and are compared as the SQL search compares index rows, for:

- token: `code`, `system|code`, `|code`, `system|`;
- reference: `Type/id`, `id`, an absolute URL (as written in the reference);
- uri: the exact value; string: starts-with, case- and accent-insensitive.

Anything else (modifiers, chains, `_has`, dates, numbers, quantities, composites, unknown
parameters) cannot be judged here: the answer is None and callers decide (writes refuse).
Alternatives of one parameter (`a,b`) are OR-ed, parameters AND-ed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from santinel.fhir.search import registry
from santinel.fhir.search.escaping import or_values, split_unescaped, unescape
from santinel.fhir.search.extract import extract_params
from santinel.fhir.search.fhirpath import literal_target
from santinel.fhir.search.normalize import MAX_INDEXED, normalize
from santinel.fhir.search.values import (
    ExtractedValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
)

Criteria = Sequence[tuple[str, str]]
SUPPORTED = frozenset({"token", "reference", "uri", "string"})


def any_matches(resource: Mapping[str, Any], alternatives: Sequence[Criteria]) -> bool | None:
    """True when the body matches all criteria of at least one alternative, False when it
    matches none, None when that cannot be told here."""
    results = [all_match(resource, criteria) for criteria in alternatives]
    if True in results:
        return True
    return None if None in results else False


def all_match(resource: Mapping[str, Any], criteria: Criteria) -> bool | None:
    results = [matches(resource, name, value) for name, value in criteria]
    if False in results:
        return False
    return None if None in results else True


def matches(resource: Mapping[str, Any], name: str, value: str) -> bool | None:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or ":" in name or "." in name:
        return None  # modifiers, chains and `_has` are not judged on a body
    param = registry.param(resource_type, name)
    if param is None or param.type not in SUPPORTED:
        return None
    found = [v for v in extract_params(resource, (name,)) if v.param == name]
    return any(_one(found, v) for v in or_values(value))


def _one(found: list[ExtractedValue], value: str) -> bool:
    return any(_value_matches(v, value) for v in found)


def _value_matches(found: ExtractedValue, value: str) -> bool:
    match found:
        case TokenValue():
            return _token(found, value)
        case ReferenceValue():
            return _reference(found, unescape(value))
        case UriValue():
            return found.value == unescape(value)
        case StringValue():
            return found.normalized.startswith(normalize(unescape(value)))
        case _:
            return False


def _token(found: TokenValue, value: str) -> bool:
    """As `storage.sql.search.tokens.system_code`: codes compare on their indexed prefix."""
    parts = split_unescaped(value, "|")
    code_of = (found.code or "")[:MAX_INDEXED]
    if len(parts) == 1:
        return found.code is not None and code_of == unescape(parts[0])[:MAX_INDEXED]
    system, code = unescape(parts[0]), unescape("|".join(parts[1:]))[:MAX_INDEXED]
    if not system:
        return found.system is None and found.code is not None and code_of == code
    if not code:
        return found.system == system
    return found.system == system and found.code is not None and code_of == code


def _reference(found: ReferenceValue, value: str) -> bool:
    """As `storage.sql.search.references`: by target, by URL, or by id alone."""
    typed = literal_target(value)
    by_target = typed is not None and (found.target_type, found.target_id) == typed
    if "://" in value or value.startswith("urn:"):
        versions = "|" not in value and found.url.startswith(value + "|")
        return found.url == value or versions or by_target
    if "|" in value:
        return found.url == value
    return by_target if typed is not None else found.target_id == value
