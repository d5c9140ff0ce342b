"""Reference rewriting inside Bundles (R4 `bundle.html#references`, `http.html#trules`).

Every `reference` string anywhere in a resource (extensions and contained resources included)
that names another entry of the Bundle — by `urn:uuid:`/`urn:oid:` or by absolute fullUrl, or as
a relative reference resolved against the containing entry's fullUrl base — is replaced by the
`Type/id` that entry was given.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

RESTFUL_URL = re.compile(
    r"(?P<base>.*/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(/_history/[^/]+)?"
)


def fullurl_base(full_url: str | None) -> str | None:
    """`http://x/fhir/` for `http://x/fhir/Patient/1`: where relative references resolve."""
    if not full_url or "://" not in full_url:
        return None
    match = RESTFUL_URL.fullmatch(full_url)
    return match["base"] if match and match["base"] else None


def rewrite(
    node: Any, resolve: Callable[[str], str | None], exact: dict[str, str] | None = None
) -> Any:
    """A copy of `node` whose `reference` strings are replaced where `resolve` gives a target,
    and whose `url` strings (Attachment.url to a Binary entry) equal to a fullUrl in `exact` too."""
    if isinstance(node, dict):
        out = {key: rewrite(value, resolve, exact) for key, value in node.items()}
        reference = node.get("reference")
        if isinstance(reference, str):
            target = resolve(reference)
            if target is not None:
                out["reference"] = target
        url = node.get("url")
        if exact and isinstance(url, str) and url in exact:
            out["url"] = exact[url]
        return out
    if isinstance(node, list):
        return [rewrite(item, resolve, exact) for item in node]
    return node


def references(node: Any) -> list[str]:
    """Every `reference` string inside `node`, in document order."""
    found: list[str] = []
    _collect_references(node, found)
    return found


def _collect_references(node: Any, found: list[str]) -> None:
    # a list, not a generator: a Bundle's resources are walked entry by entry, element by element
    if isinstance(node, dict):
        reference = node.get("reference")
        if isinstance(reference, str):
            found.append(reference)
        for value in node.values():
            if isinstance(value, dict | list):
                _collect_references(value, found)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _collect_references(item, found)


def entry_resolver(mapping: dict[str, str], base: str | None) -> Callable[[str], str | None]:
    """Resolve a reference of one entry: directly by fullUrl, or relative to the entry's base.

    An entry whose fullUrl is not RESTful (`urn:uuid:…`) has no base of its own; its relative
    `Type/id` references then resolve to the one entry whose RESTful fullUrl ends with them, as
    the ingestion Bundles of IHE XDS expect (HAPI does the same).
    """

    def resolve(reference: str) -> str | None:
        direct = mapping.get(reference)
        if direct is not None:
            return direct
        if "://" in reference or reference.startswith(("urn:", "#")):
            return None
        if base:
            return mapping.get(base + reference)
        suffixed = {
            t for url, t in mapping.items() if "://" in url and url.endswith("/" + reference)
        }
        return suffixed.pop() if len(suffixed) == 1 else None

    return resolve
