"""API tiers and partner contracts (no I/O): what a principal may do beyond its scopes.

- `public`: read and search only, only on the configured public types, which must hold no
  patient data (`holds_no_patient_data`); a caller without a token is served as an anonymous
  public principal whose scopes read exactly those types, and whose refusals are 401.
- `partner`: by contract — only the client's registered `allowed_types` (every path: reads,
  searches, chains, `_has`, includes, history, writes, batch entries) and, when the contract
  lists purposes of use, a token asking for purposes within them.
- `internal`: what its scopes allow.

A client of any tier with `allowed_types` or `purposes` registered is held to them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from santinel.auth.principal import Principal
from santinel.auth.scopes import parse_scopes
from santinel.fhir.compartment_membership import CONTAINERS, PATIENT, patient_reach
from santinel.fhir.search import registry

ANONYMOUS = "anonymous"
PUBLIC_INTERACTIONS = frozenset(
    {"read", "vread", "search-type", "search-system", "search-compartment", "capabilities"}
)


# a purpose-of-use code (HL7 v3 PurposeOfUse: TREAT, ETREAT, HPAYMT, PUBHLTH, HRESCH…)
PURPOSE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
MAX_PURPOSES = 8


class UnsafePublicType(ValueError):
    """A configured public type could hold patient data (or is no resource type)."""


def holds_no_patient_data(resource_type: str) -> bool:
    """Not in the Patient compartment, not a container (Bundle, Binary, Parameters), and no
    reference parameter of it can point at a type that is (PractitionerRole is fine; Task,
    Device, Slot → Schedule are not)."""
    if resource_type not in registry.resource_types() or resource_type in CONTAINERS:
        return False
    if patient_reach(resource_type) == "member":
        return False
    for param in registry.params_for(resource_type).values():
        if param.type != "reference":
            continue
        targets = param.targets or ()
        if not targets or any(t == PATIENT or t in CONTAINERS or _member(t) for t in targets):
            return False
    return True


def public_types(text: str) -> frozenset[str]:
    """The configured public types (comma-separated), each checked."""
    types = frozenset(t.strip() for t in text.split(",") if t.strip())
    unsafe = sorted(t for t in types if not holds_no_patient_data(t))
    if unsafe:
        raise UnsafePublicType(
            f"public_types: {', '.join(unsafe)} can hold patient data (or is not a resource "
            "type) and cannot be public."
        )
    return types


def anonymous_principal(types: Iterable[str]) -> Principal:
    """The caller without a token: reads and searches the public types, nothing else."""
    allowed = frozenset(types)
    scopes = parse_scopes(" ".join(f"system/{t}.rs" for t in sorted(allowed)))
    return Principal(ANONYMOUS, "public", scopes, allowed_types=allowed, anonymous=True)


def restrict(
    principal: Principal, contract_types: frozenset[str] | None, public: frozenset[str]
) -> Principal:
    """The principal held to its contract's types, and a public one to the public types."""
    allowed = contract_types
    if principal.tier == "public":
        allowed = public if allowed is None else allowed & public
    if allowed is None or allowed == principal.allowed_types:
        return principal
    return dataclasses.replace(principal, allowed_types=allowed)


def denial(principal: Principal, interaction: str, resource_type: str) -> str | None:
    """Why the tier or the contract refuses this interaction; None when they allow it."""
    if principal.tier == "public":
        if interaction not in PUBLIC_INTERACTIONS:
            return "the public tier only reads and searches"
        if principal.allowed_types is None:
            return "the public tier has no public types"
    if principal.allowed_types is not None and resource_type not in principal.allowed_types:
        return f"{resource_type} is outside the client's contract"
    return None


def purpose_denial(principal: Principal, contract: frozenset[str] | None) -> str | None:
    """A client whose contract lists purposes of use must ask for some, all within it."""
    if contract is None:
        return None
    asked = set(principal.purpose_of_use)
    if not asked:
        return "the client's contract requires a purpose_of_use in the token request"
    if not asked <= contract:
        return "the token's purpose of use is outside the client's contract"
    return None


def requested_purposes_problem(requested: str, contract: frozenset[str] | None) -> str | None:
    """What is wrong with the purposes a token request asks for (None: nothing)."""
    asked = requested.split()
    if any(PURPOSE.fullmatch(code) is None for code in asked) or len(asked) > MAX_PURPOSES:
        return "purpose_of_use must be up to 8 space-separated codes (e.g. TREAT)."
    if contract is not None and not asked:
        return (
            "This client's contract requires a purpose_of_use (one of: "
            + ", ".join(sorted(contract))
            + ")."
        )
    if contract is not None and not set(asked) <= contract:
        return "purpose_of_use is outside this client's contract."
    return None


def _member(resource_type: str) -> bool:
    return patient_reach(resource_type) == "member"
