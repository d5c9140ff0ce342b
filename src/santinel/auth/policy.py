"""Access decisions: SMART scopes, the patient compartment and v2 query restrictions.

`authorize` answers for one interaction on one resource type with an `AccessDecision`: a value,
not a boolean, carrying the constraints the storage layer must push INTO its queries (the patient
compartment, the scopes' query restrictions) and what audit needs (the reason, the scope used).
Deny by default: a principal with no covering scope is refused.

Patient-confined scopes (`patient/…`, and `user/…` of a user who is a Patient) apply per type
as `santinel.fhir.compartment_membership.patient_reach` classifies it: confined to the patient's
compartment on its member types, read-only and unconfined on types that hold no patient data
(Practitioner, Organization, Medication…), nothing on every other type. `*` (system-wide
history) keeps the compartment: the caller resolves it type by type.
"""

from __future__ import annotations

from dataclasses import dataclass

from santinel.auth import tiers
from santinel.auth.principal import Principal
from santinel.auth.scopes import ResourceScope
from santinel.fhir.compartment_membership import patient_reach

# R4 interaction → the SMART v2 permission letter it needs.
PERMISSION = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search-type": "s",
    "search-system": "s",
    "search-compartment": "s",
    "history-type": "s",
    "history-system": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
    "conditional-update": "u",
    "conditional-delete": "d",
    "conditional-patch": "u",
}


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    reason: str
    # Only resources in this compartment, e.g. ("Patient", "123"); None: no compartment limit.
    compartment: tuple[str, str] | None = None
    # v2 restrictions: a resource must match ALL criteria of at least ONE of these sets;
    # empty: no restriction.
    filters: tuple[tuple[tuple[str, str], ...], ...] = ()
    scope: str | None = None  # the scope that granted access, for the audit record

    @classmethod
    def deny(cls, reason: str) -> AccessDecision:
        return cls(False, reason)


def authorize(principal: Principal, interaction: str, resource_type: str) -> AccessDecision:
    permission = PERMISSION.get(interaction)
    if permission is None:
        return AccessDecision.deny(f"no scope grants the '{interaction}' interaction")
    refused = tiers.denial(principal, interaction, resource_type)  # API tier, partner contract
    if refused is not None:
        return AccessDecision.deny(refused)
    covering = [s for s in principal.scopes.resources if s.covers(resource_type, permission)]
    if not covering:
        return AccessDecision.deny(f"no scope grants '{permission}' on {resource_type}")
    unconfined = [
        s for s in covering if s.context != "patient" and not _confined_user(principal, s)
    ]
    chosen = unconfined or covering
    compartment = None
    if not unconfined:
        compartment = _patient_compartment(principal)
        if compartment is None:
            return AccessDecision.deny("patient scopes without a patient in context")
        reach = "member" if resource_type == "*" else patient_reach(resource_type)
        if reach == "outside":
            return AccessDecision.deny(f"{resource_type} is outside the patient compartment")
        if reach == "free":
            if permission not in ("r", "s"):
                return AccessDecision.deny(f"patient scopes only read {resource_type}")
            compartment = None  # holds no patient's data: nothing to confine
    return AccessDecision(
        allowed=True,
        reason=f"granted by {chosen[0].text()}",
        compartment=compartment,
        filters=_filters(chosen),
        scope=chosen[0].text(),
    )


def _confined_user(principal: Principal, scope: ResourceScope) -> bool:
    """A person who is a patient sees, through `user/` scopes, only their own record."""
    return scope.context == "user" and (principal.fhir_user or "").startswith("Patient/")


def _patient_compartment(principal: Principal) -> tuple[str, str] | None:
    if principal.patient:
        return "Patient", principal.patient
    if (principal.fhir_user or "").startswith("Patient/"):
        return "Patient", (principal.fhir_user or "").split("/", 1)[1]
    return None


def _filters(scopes: list[ResourceScope]) -> tuple[tuple[tuple[str, str], ...], ...]:
    if any(not s.query for s in scopes):
        return ()  # one unrestricted scope is enough
    return tuple(s.query for s in scopes)
