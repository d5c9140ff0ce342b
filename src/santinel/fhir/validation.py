"""Validation of incoming resources against the R4 definitions.

Structure, cardinalities, required elements, primitive formats, choice types and contained
resources are checked by `fhirkit` (a Rust implementation of every R4 type, chosen after measuring
it against `fhir.resources` on the official examples: see `bench/validators.py`). On top of it we
check what it leaves to servers: id syntax, reference syntax and safe narrative XHTML.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import fhirkit

from santinel.errors import BadRequest, Issue, UnknownResourceType, UnprocessableEntity
from santinel.fhir.json import JsonObject, parse_object
from santinel.fhir.narrative import narrative_problems
from santinel.fhir.resource import is_valid_id
from santinel.fhir.resource_types import is_resource_type

_ID = r"[A-Za-z0-9\-.]{1,64}"
RELATIVE_REFERENCE = re.compile(rf"(?P<type>[A-Z][A-Za-z]+)/{_ID}(/_history/{_ID})?")
ABSOLUTE_REFERENCE = re.compile(
    r"(https?://[^\s]+|urn:uuid:[0-9a-fA-F\-]{36}|urn:oid:[0-2](\.\d+)+)"
)
LOCAL_REFERENCE = re.compile(rf"#({_ID})?")
CONDITIONAL_REFERENCE = re.compile(r"(?P<type>[A-Z][A-Za-z]+)\?\S+")
MAX_REPORTED_ISSUES = 100


def parse_resource(
    body: bytes,
    *,
    expected_type: str | None = None,
    allow_conditional_references: bool = False,
) -> JsonObject:
    """Parse and validate one resource; raise a client error describing every problem found."""
    resource = parse_object(body, "resource")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise BadRequest("The resource has no 'resourceType'.", expression=("resourceType",))
    if not is_resource_type(resource_type):
        raise UnknownResourceType(
            f"'{resource_type}' is not a FHIR R4 resource type.", expression=("resourceType",)
        )
    if expected_type is not None and resource_type != expected_type:
        raise BadRequest(
            f"The resource is a {resource_type} but the URL names {expected_type}.",
            expression=("resourceType",),
        )
    issues = structural_issues(body, resource_type)
    issues += server_rule_issues(resource, allow_conditional_references)
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


def _walk(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every JSON object inside `node` with its FHIRPath-like location."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk(item, f"{path}[{index}]")


def _issue(expression: str, problem: str) -> Issue:
    return Issue(code="value", diagnostics=f"{expression}: {problem}", expression=(expression,))
