"""Whether a resource body belongs to a compartment (R4 `compartmentdefinition.html`), no I/O.

Membership follows the official CompartmentDefinitions: an Observation is in the compartment of
Patient/123 when one of its `subject` or `performer` parameters refers to Patient/123. The
references are taken from the same index extraction (`extract_params`) that fills the search
tables, so a body judged here and the same body found by a compartment search agree.

`patient_reach` classifies resource types for `patient/` scopes (see `santinel.services.guard`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, Literal

from santinel.fhir.search import registry
from santinel.fhir.search.extract import extract_params
from santinel.fhir.search.values import ExtractedValue, ReferenceValue

PATIENT = "Patient"
# Types that wrap arbitrary content: nothing in their search parameters says whose data they hold.
CONTAINERS = frozenset({"Bundle", "Binary", "Parameters"})
Reach = Literal["member", "free", "outside"]


def owners(resource: Mapping[str, Any], kind: str = PATIENT) -> frozenset[str]:
    """The ids of the `kind` resources whose compartment holds `resource` (itself included,
    when it is a `kind` resource with an id)."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return frozenset()
    found: set[str] = set()
    if resource_type == kind and isinstance(resource.get("id"), str):
        found.add(resource["id"])
    codes = registry.compartment_params(kind, resource_type)
    for value in extract_params(resource, codes):
        if isinstance(value, ReferenceValue) and value.target_type == kind and value.target_id:
            found.add(value.target_id)
    return frozenset(found)


def referenced_owners(
    resource_type: str, values: Iterable[ExtractedValue], kind: str = PATIENT
) -> frozenset[str]:
    """`owners` from index values already extracted (`extract`), without evaluating the
    expressions again; the resource itself is not counted."""
    codes = frozenset(registry.compartment_params(kind, resource_type))
    return frozenset(
        value.target_id
        for value in values
        if isinstance(value, ReferenceValue)
        and value.param in codes
        and value.target_type == kind
        and value.target_id
    )


def in_compartment(resource: Mapping[str, Any], compartment: tuple[str, str]) -> bool:
    """`resource` is in that compartment (it may be in others too): what a read may see."""
    kind, owner = compartment
    return owner in owners(resource, kind)


def only_in_compartment(resource: Mapping[str, Any], compartment: tuple[str, str]) -> bool:
    """`resource` is in that compartment and in no other of the same kind: what a confined write
    may leave behind or change (an Appointment shared with another patient is theirs too)."""
    kind, owner = compartment
    return owners(resource, kind) == {owner}


def patient_reach(resource_type: str) -> Reach:
    """How a `patient/` scope applies to a type:

    - `member`: the type can be in a Patient compartment; access is confined to that compartment;
    - `free`: the type is in no compartment, is not a container and every reference parameter of
      it points only at other `free` types (Practitioner, Organization, Location, Medication,
      ValueSet…): it holds no patient's data, so it is read unconfined;
    - `outside`: every other type (Task, Device, Bundle, Binary, PractitionerRole, Slot…): what
      it holds cannot be confined by the Patient CompartmentDefinition, so a `patient/` scope
      grants nothing on it.
    """
    if resource_type == PATIENT or registry.compartment_params(PATIENT, resource_type):
        return "member"
    return "free" if resource_type in _free_types() else "outside"


@cache
def _free_types() -> frozenset[str]:
    in_some = {
        t for c in registry.compartments() for t in registry.resource_types_in_compartment(c)
    }
    free = set(registry.resource_types()) - in_some - CONTAINERS
    # A type referring to a non-free type (Slot → Schedule) may lead to patient data: drop it,
    # until what is left only refers within itself.
    changed = True
    while changed:
        changed = False
        for resource_type in sorted(free):
            if not all(p.targets and set(p.targets) <= free for p in _references(resource_type)):
                free.discard(resource_type)
                changed = True
    return frozenset(free)


def _references(resource_type: str) -> list[registry.SearchParam]:
    params = registry.params_for(resource_type).values()
    return [p for p in params if p.type == "reference"]
