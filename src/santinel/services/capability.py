"""The CapabilityStatement (R4 `capabilitystatement.html`), generated from the routing table."""

from __future__ import annotations

from typing import Any

from santinel.fhir.resource import instant, now_micros
from santinel.fhir.resource_types import RESOURCE_TYPES

TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
SEARCH_PARAMETERS = (
    {
        "name": "_id",
        "type": "token",
        "definition": "http://hl7.org/fhir/SearchParameter/Resource-id",
    },
    {
        "name": "_lastUpdated",
        "type": "date",
        "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
    },
)


def statement(
    base_url: str, software_version: str, routes: dict[tuple[str, str], str]
) -> dict[str, Any]:
    implemented = set(routes.values())
    type_interactions = [{"code": c} for c in TYPE_INTERACTIONS if c in implemented]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(now_micros()),
        "publisher": "Santinel",
        "kind": "instance",
        "software": {"name": "Santinel"},  # no version: nothing to fingerprint
        "implementation": {"description": "Santinel FHIR server", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": [],
        "rest": [
            {
                "mode": "server",
                "resource": [
                    _resource(t, type_interactions, implemented) for t in sorted(RESOURCE_TYPES)
                ],
                "interaction": [{"code": c} for c in ("history-system",) if c in implemented],
            }
        ],
    }


def _resource(
    rtype: str, interactions: list[dict[str, str]], implemented: set[str]
) -> dict[str, Any]:
    return {
        "type": rtype,
        "interaction": interactions,
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": "create" in implemented,
        "conditionalRead": "modified-since" if "read" in implemented else "not-supported",
        "conditionalUpdate": "conditional-update" in implemented,
        "conditionalDelete": "single" if "conditional-delete" in implemented else "not-supported",
        "searchParam": list(SEARCH_PARAMETERS),
    }
