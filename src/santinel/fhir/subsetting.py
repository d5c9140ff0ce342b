"""`_summary` and `_elements` (R4 `search.html#summary`, `search.html#elements`)."""

from __future__ import annotations

from typing import Any

from santinel.errors import InvalidSearch
from santinel.fhir.definitions import load

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
SUMMARY_MODES = ("true", "text", "data", "count", "false")
ALWAYS = ("resourceType", "id", "meta")


def _element_names(resource_type: str, kind: str) -> set[str]:
    entry = load("elements.json").get(resource_type, {"summary": [], "mandatory": []})
    return {_key_prefix(name) for name in entry[kind]}


def _key_prefix(name: str) -> str:
    return name[:-3] if name.endswith("[x]") else name


def _matches(key: str, names: set[str]) -> bool:
    # JSON keys of choice elements carry the type (valueQuantity) and primitives an extension
    # sibling (_birthDate); both belong to the element they name.
    bare = key[1:] if key.startswith("_") else key
    return bare in names or any(
        bare.startswith(n) and bare[len(n) : len(n) + 1].isupper() for n in names
    )


def summarize(resource: dict[str, Any], mode: str) -> dict[str, Any]:
    """The resource reduced per `_summary=mode`; `false` returns it unchanged."""
    if mode not in SUMMARY_MODES:
        raise InvalidSearch(f"_summary must be one of {', '.join(SUMMARY_MODES)}.")
    if mode == "false":
        return resource
    resource_type = resource["resourceType"]
    if mode == "data":
        kept = {k: v for k, v in resource.items() if k != "text"}
    elif mode == "text":
        names = _element_names(resource_type, "mandatory") | {"text"}
        kept = {k: v for k, v in resource.items() if k in ALWAYS or _matches(k, names)}
    else:  # true (and count, whose entries are never shown)
        names = _element_names(resource_type, "summary")
        kept = {k: v for k, v in resource.items() if k in ALWAYS or _matches(k, names)}
    return _mark_subsetted(kept)


def select_elements(resource: dict[str, Any], elements: str) -> dict[str, Any]:
    """Only the named top-level elements, plus the mandatory ones and id/meta."""
    names = {e.strip().split(".", 1)[-1] for e in elements.split(",") if e.strip()}
    names |= _element_names(resource["resourceType"], "mandatory")
    kept = {k: v for k, v in resource.items() if k in ALWAYS or _matches(k, names)}
    return _mark_subsetted(kept)


def _mark_subsetted(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    return {**resource, "meta": meta}
