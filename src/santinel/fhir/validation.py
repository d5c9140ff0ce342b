"""Validation of incoming resources against the R4 definitions.

Structure, cardinalities, required elements, primitive formats, choice types and contained
resources are checked by `fhirkit` (a Rust implementation of every R4 type, chosen after measuring
it against `fhir.resources` on the official examples: see `bench/validators.py`). On top of it we
check what it leaves to servers: id syntax, reference syntax, safe narrative XHTML, and the
invariants it does not evaluate: ele-1 (no empty objects), ext-1 (an extension has a value or
nested extensions, not both) and dom-2 to dom-5 (contained resources); and, by element type
(`value_checks`), codes against the value sets of required bindings and dates against the calendar.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import fhirkit

from santinel.errors import BadRequest, Issue, UnprocessableEntity
from santinel.fhir.json import JsonObject, parse_object
from santinel.fhir.narrative import narrative_problems
from santinel.fhir.resource import is_valid_id
from santinel.fhir.resource_types import is_resource_type
from santinel.fhir.value_checks import value_issues

_ID = r"[A-Za-z0-9\-.]{1,64}"
RELATIVE_REFERENCE = re.compile(rf"(?P<type>[A-Z][A-Za-z]+)/{_ID}(/_history/{_ID})?")
ABSOLUTE_REFERENCE = re.compile(
    r"(https?://[^\s]+|urn:uuid:[0-9a-fA-F\-]{36}|urn:oid:[0-2](\.\d+)+)"
)
LOCAL_REFERENCE = re.compile(rf"#({_ID})?")
EXTENSION_KEYS = ("extension", "modifierExtension")
CONDITIONAL_REFERENCE = re.compile(r"(?P<type>[A-Z][A-Za-z]+)\?\S+")
MAX_REPORTED_ISSUES = 100


def parse_resource(
    body: bytes,
    *,
    expected_type: str | None = None,
    allow_conditional_references: bool = False,
    parsed: JsonObject | None = None,
) -> JsonObject:
    """Parse and validate one resource; raise a client error describing every problem found.
    `parsed`: `body` already parsed by the caller (a Bundle is read before it is validated)."""
    resource = parsed if parsed is not None else parse_object(body, "resource")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise BadRequest(
            "The resource has no 'resourceType' naming its type.", expression=("resourceType",)
        )
    if not is_resource_type(resource_type):
        # A problem of the body, not of the URL: 400, where an unknown type in the URL is 404.
        raise BadRequest(
            f"'{resource_type[:64]}' is not a FHIR R4 resource type.",
            expression=("resourceType",),
            issue_code="not-supported",
        )
    if expected_type is not None and resource_type != expected_type:
        raise BadRequest(
            f"The resource is a {resource_type} but the URL names {expected_type}.",
            expression=("resourceType",),
        )
    issues = structural_issues(body, resource_type)
    issues += server_rule_issues(resource, allow_conditional_references)
    issues += value_issues(resource)
    if issues:
        raise UnprocessableEntity(
            f"The {resource_type} is not valid: {issues[0].diagnostics}",
            issues=issues[:MAX_REPORTED_ISSUES],
        )
    return resource


def check_type(resource: JsonObject, expected_type: str) -> None:
    """400 unless `resource` is of the type its URL names."""
    if resource.get("resourceType") != expected_type:
        raise BadRequest(
            f"The resource is a {resource.get('resourceType')} but the URL names {expected_type}.",
            expression=("resourceType",),
        )


def structural_issues(body: bytes, resource_type: str) -> list[Issue]:
    try:
        found = fhirkit.validate(body)
    except fhirkit.ParseError as exc:
        raise BadRequest(f"The resource cannot be read: {exc}.") from None
    return [
        Issue(
            code="structure" if "unknown element" in i.message else "invalid",
            diagnostics=f"{i.path}: {i.message}",
            severity="error",
            expression=(i.path,),
        )
        for i in found
        if i.severity == "error"
    ]


def server_rule_issues(resource: JsonObject, allow_conditional_references: bool) -> list[Issue]:
    resource_type = resource["resourceType"]
    issues: list[Issue] = []
    rid = resource.get("id")
    if isinstance(rid, str) and not is_valid_id(rid):
        issues.append(_issue(f"{resource_type}.id", "is not a valid id ([A-Za-z0-9-.]{1,64})"))
    for path, node in _walk(resource, resource_type):
        if not node:
            issues.append(_issue(path, "an empty object is not allowed (ele-1)"))
        for key in EXTENSION_KEYS:
            extensions = node.get(key)
            if isinstance(extensions, list):
                issues.extend(_extension_issues(f"{path}.{key}", extensions))
        if isinstance(node.get("resourceType"), str) and node.get("contained"):
            issues.extend(_contained_issues(path, node))
        reference = node.get("reference")
        if isinstance(reference, str) and not _is_valid_reference(
            reference, allow_conditional_references
        ):
            issues.append(
                _issue(f"{path}.reference", f"'{reference[:80]}' is not a valid reference")
            )
        div = node.get("div")
        if isinstance(div, str) and "status" in node:
            issues.extend(_issue(f"{path}.div", p) for p in narrative_problems(div))
    return issues


def _is_valid_reference(reference: str, allow_conditional: bool) -> bool:
    relative = RELATIVE_REFERENCE.fullmatch(reference)
    if relative:
        return is_resource_type(relative["type"])
    if ABSOLUTE_REFERENCE.fullmatch(reference) or LOCAL_REFERENCE.fullmatch(reference):
        return True
    conditional = CONDITIONAL_REFERENCE.fullmatch(reference)
    return bool(allow_conditional and conditional and is_resource_type(conditional["type"]))


def _extension_issues(path: str, extensions: list[Any]) -> list[Issue]:
    """R4 ext-1: an extension has a value (possibly a primitive's `_value…` part) or nested
    extensions, never both nor neither."""
    return [
        _issue(f"{path}[{i}]", "an extension has either a value or nested extensions (ext-1)")
        for i, extension in enumerate(extensions)
        if isinstance(extension, dict)
        and extension
        and any(k.startswith(("value", "_value")) for k in extension) == ("extension" in extension)
    ]


def _contained_issues(path: str, container: dict[str, Any]) -> list[Issue]:
    """R4 dom-2 to dom-5: a contained resource contains nothing, has no version, last update or
    security label, and is referenced from the resource (`#id`) or refers to it (`#`)."""
    contained = container["contained"]
    if not isinstance(contained, list):
        return []  # the structural check reports it
    local = {value for value in _strings(container) if value.startswith("#")}
    issues: list[Issue] = []
    for index, item in enumerate(contained):
        if not isinstance(item, dict):
            continue
        where = f"{path}.contained[{index}]"
        if "contained" in item:
            issues.append(_issue(where, "a contained resource cannot contain resources (dom-2)"))
        meta = item.get("meta")
        if isinstance(meta, dict) and ("versionId" in meta or "lastUpdated" in meta):
            issues.append(
                _issue(where, "a contained resource has no meta.versionId or lastUpdated (dom-4)")
            )
        if isinstance(meta, dict) and meta.get("security"):
            issues.append(_issue(where, "a contained resource has no security label (dom-5)"))
        rid = item.get("id")
        if not (isinstance(rid, str) and f"#{rid}" in local) and "#" not in _strings(item):
            issues.append(
                _issue(
                    where,
                    "a contained resource needs an id that the resource refers to as '#id', "
                    "or must refer to the resource as '#' (dom-3)",
                )
            )
    return issues


def _strings(node: Any) -> Iterator[str]:
    """Every string value inside `node`."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _walk(node: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    """Every JSON object inside `node` with its FHIRPath-like location, in document order."""
    # A loop over a stack, not nested generators (a 100-entry Bundle is thousands of objects,
    # each handed up through every level), descending only into objects and lists: a primitive
    # holds no object, and its path would be a string made for nothing.
    found: list[tuple[str, dict[str, Any]]] = []
    stack: list[tuple[str, Any]] = [(path, node)]
    while stack:
        where, current = stack.pop()
        if isinstance(current, dict):
            found.append((where, current))
            inside = [(f"{where}.{k}", v) for k, v in current.items() if isinstance(v, dict | list)]
        elif isinstance(current, list):
            inside = [
                (f"{where}[{i}]", v) for i, v in enumerate(current) if isinstance(v, dict | list)
            ]
        else:
            continue
        stack.extend(reversed(inside))  # the first child is walked next
    return found


def _issue(expression: str, problem: str) -> Issue:
    return Issue(code="value", diagnostics=f"{expression}: {problem}", expression=(expression,))
