"""The patient picker of a standalone launch: which patients a signed-in user may pick.

A user who is a patient never sees it (they act for themself). Other users (practitioners,
care staff) may pick any patient of this server, found by name; restricting a practitioner to
their care team's patients needs CareTeam/consent rules and comes with the consent issue.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from santinel.services.dispatch import FhirService
from santinel.services.guard import OPERATOR
from santinel.services.request import FhirRequest
from santinel.types import ResourceId, ResourceType

PAGE = 20


@dataclass(frozen=True)
class PatientChoice:
    patient_id: str
    name: str
    birth_date: str


async def choices(service: FhirService, base_url: str, name: str) -> list[PatientChoice]:
    # no `_sort` on names: they are stored as blind indexes (encryption at rest), not sortable
    params: list[tuple[str, str]] = [("_count", str(PAGE)), ("_sort", "-_lastUpdated")]
    if name.strip():
        params.append(("name", name.strip()[:100]))
    request = FhirRequest("GET", ("Patient",), tuple(params), base_url=base_url, principal=OPERATOR)
    bundle = (await service.handle(request)).resource or {}
    found: list[PatientChoice] = []
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        if resource.get("resourceType") == "Patient":
            birth = resource.get("birthDate", "")
            found.append(PatientChoice(resource["id"], _name(resource), birth))
    return found


async def exists(service: FhirService, patient_id: str) -> bool:
    if not patient_id or len(patient_id) > 64:
        return False
    stored = await service.repository.read(ResourceType("Patient"), ResourceId(patient_id))
    return stored is not None and not stored.deleted


def _name(patient: dict[str, object]) -> str:
    names = patient.get("name")
    if not isinstance(names, list) or not names or not isinstance(names[0], dict):
        return "(no name)"
    first = names[0]
    if isinstance(first.get("text"), str):
        return str(first["text"])
    given = " ".join(g for g in first.get("given", []) if isinstance(g, str))
    family = first.get("family") if isinstance(first.get("family"), str) else ""
    return f"{given} {family}".strip() or "(no name)"


async def display(service: FhirService, patient_id: str) -> str:
    """How the consent page names the patient (the id when the record has no name)."""
    stored = await service.repository.read(ResourceType("Patient"), ResourceId(patient_id))
    if stored is None or stored.body is None:
        return patient_id
    return _name(orjson.loads(stored.body))
