"""The CapabilityStatement (R4 `capabilitystatement.html`), generated from the routing table."""

from __future__ import annotations

from typing import Any

from santinel.fhir.resource import instant, now_micros
from santinel.fhir.resource_types import RESOURCE_TYPES
from santinel.fhir.search import registry
from santinel.fhir.search.registry import SearchParam

TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
    "patch",
)
# Common parameters (R4 `search.html#all`) this server does not answer; they are not listed.
NOT_SUPPORTED_COMMON = frozenset({"_text", "_content", "_list", "_query", "_filter", "_type"})


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
        "patchFormat": [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/fhir+json",
        ],
        "rest": [
            {
                "mode": "server",
                "security": security(base_url),
                "resource": [
                    _resource(t, type_interactions, implemented) for t in sorted(RESOURCE_TYPES)
                ],
                "interaction": [
                    {"code": c}
                    for c in ("history-system", "search-system", "transaction", "batch")
                    if c in implemented or (c == "batch" and "transaction" in implemented)
                ],
                "searchParam": [
                    _search_param(p)
                    for p in registry.params_for("Resource").values()
                    if p.code not in NOT_SUPPORTED_COMMON and p.type != "special"
                ],
            }
        ],
    }


def security(base_url: str) -> dict[str, Any]:
    """SMART on FHIR's `oauth-uris` extension: where clients such as the Python `fhirclient`
    find the authorization server (they do not read `.well-known/smart-configuration`)."""
    issuer = base_url.removesuffix("/fhir")
    uris = {
        "authorize": f"{issuer}/oauth/authorize",
        "token": f"{issuer}/oauth/token",
        "introspect": f"{issuer}/oauth/introspect",
        "revoke": f"{issuer}/oauth/revoke",
    }
    return {
        "cors": True,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
            }
        ],
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": k, "valueUri": v} for k, v in uris.items()],
            }
        ],
    }


def _resource(
    rtype: str, interactions: list[dict[str, str]], implemented: set[str]
) -> dict[str, Any]:
    params = [
        p
        for p in registry.params_for(rtype).values()
        if p.type != "special" and p.code not in NOT_SUPPORTED_COMMON
    ]
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
        "searchInclude": sorted(f"{rtype}:{p.code}" for p in params if p.type == "reference"),
        "searchRevInclude": ["*"],
        "searchParam": [_search_param(p) for p in params],
    }


def _search_param(param: SearchParam) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": param.code, "type": param.type}
    if param.url:
        entry["definition"] = param.url
    return entry
