"""Bundle builders for history and search results (R4 `bundle.html`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from santinel.fhir.resource import instant, now_micros


@dataclass(frozen=True)
class Link:
    relation: str
    url: str


def bundle(
    bundle_type: str,
    entries: Sequence[dict[str, Any]],
    links: Sequence[Link],
    total: int | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": bundle_type,
        "meta": {"lastUpdated": instant(now_micros())},
    }
    if total is not None:
        result["total"] = total
    result["link"] = [{"relation": link.relation, "url": link.url} for link in links]
    result["entry"] = list(entries)
    return result
