"""Applying access decisions on every path of the FHIR API (deny by default).

`require` turns a `Principal` and an interaction into an `AccessDecision` or an error: no
principal → 401, no covering scope → 403. Searches also check every type a query reaches
(chained, `_has`, `_include`/`_revinclude`) so that none of them becomes an oracle.

A decision that confines a principal (the patient compartment of a `patient/` scope, or of a
`user/` scope whose user is a Patient; v2 query restrictions such as `?category=…`) applies on
every path, pushed into the query wherever there is one:

- search, compartment search, `_getpages`: the compartment and restrictions are conditions of
  the query; a chained or `_has` parameter reaching another type gets that type's own
  confinement inside its sub-search (`confine_reached`);
- read, vread, history-instance: the current resource must match the confined search, else
  404 as if missing; a version whose own body lies outside is 404 too (a resource moved from
  another patient's record keeps that patient's old versions);
- history-type and history-system: only versions of resources matching each type's confined
  search (`history_filters`), and no version whose body lies outside;
- `_include` / `_revinclude` (also `:iterate`, `*`): an included resource must be readable by
  its own type's decision, checked by a confined search on the included ids (`search.py`);
- writes, conditional writes, batch and transaction entries: `santinel.services.confined_writes`
  (a write outside the compartment is 403; conditions are confined searches).

How a `patient/` scope applies to a type (`compartment_membership.patient_reach`): confined on
the types that can be members of a Patient compartment; read-only and unconfined on the types
that can hold no patient data (Practitioner, Organization, Location, Medication, terminology…);
nothing at all on every other type (Task, Device, Bundle, Binary, PractitionerRole…), whose
patient data no CompartmentDefinition lets us confine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from santinel.auth.policy import AccessDecision, authorize
from santinel.auth.principal import Principal
from santinel.auth.scopes import parse_scopes
from santinel.errors import Forbidden
from santinel.fhir.compartment_membership import in_compartment, only_in_compartment
from santinel.fhir.json import parse_object
from santinel.fhir.search import registry
from santinel.fhir.search.match_body import any_matches
from santinel.fhir.search.query import (
    AllOf,
    AnyOf,
    Chained,
    Condition,
    Criterion,
    Limits,
    Reverse,
    SearchQuery,
    parse_query,
)
from santinel.services import audit_context
from santinel.services.authn import unauthorized
from santinel.storage.base import StoredVersion, TypeFilter

# The operator's own tools (`santinel load`, `santinel demo`) act with full system access.
OPERATOR = Principal("santinel-operator", "internal", parse_scopes("system/*.cruds"))
DENIED = "The access token does not allow this request."


def require(principal: Principal | None, interaction: str, resource_type: str) -> AccessDecision:
    if principal is None:
        raise unauthorized()
    decision = authorize(principal, interaction, resource_type)
    if not decision.allowed:
        # an anonymous caller (public tier, no token) is told a token is needed, as before
        raise unauthorized() if principal.anonymous else Forbidden(DENIED)
    audit_context.note_policy(decision.scope)
    return decision


def confines(decision: AccessDecision) -> bool:
    return decision.compartment is not None or bool(decision.filters)


def constrain(query: SearchQuery, decision: AccessDecision, principal: Principal | None) -> None:
    """Push the decision into the query and check every type the query reaches."""
    query.conditions[:] = [confine_reached(c, principal) for c in query.conditions]
    for include in [*query.includes, *query.revincludes]:
        if include.source_type != "*":
            require(principal, "read", include.source_type)
    query.conditions.extend(confinement(decision, query.resource_type))


def confine_reached(condition: Condition, principal: Principal | None) -> Condition:
    """The condition with every sub-search on another type (chain, `_has`) confined by the
    principal's decision on that type: `Encounter?_has:Observation:encounter:code=x` must not
    tell a patient about another patient's Observation pointing at their Encounter."""
    match condition:
        case Chained():
            inner = confine_reached(condition.inner, principal)
            return dataclasses.replace(
                condition, inner=_within(condition.target_type, inner, principal)
            )
        case Reverse():
            inner = confine_reached(condition.inner, principal)
            return dataclasses.replace(
                condition, inner=_within(condition.source_type, inner, principal)
            )
        case AnyOf() | AllOf():
            parts = tuple(confine_reached(c, principal) for c in condition.conditions)
            return dataclasses.replace(condition, conditions=parts)
        case _:
            return condition


def _within(resource_type: str, inner: Condition, principal: Principal | None) -> Condition:
    extra = confinement(require(principal, "search-type", resource_type), resource_type)
    return AllOf((inner, *extra)) if extra else inner


def confinement(decision: AccessDecision, resource_type: str) -> list[Condition]:
    conditions: list[Condition] = []
    if decision.compartment is not None:
        conditions.append(compartment_condition(decision.compartment, resource_type))
    if decision.filters:
        alternatives = [_all_of(resource_type, f) for f in decision.filters]
        conditions.append(AnyOf(tuple(alternatives)))
    return conditions


def compartment_condition(compartment: tuple[str, str], resource_type: str) -> Condition:
    """Membership of a `resource_type` resource in e.g. the compartment of Patient/123."""
    kind, owner = compartment
    alternatives: list[Condition] = []
    if resource_type == kind:
        id_param = registry.param(resource_type, "_id")
        if id_param is not None:
            alternatives.append(Criterion(resource_type, id_param, None, (owner,)))
    for code in registry.compartment_params(kind, resource_type):
        param = registry.param(resource_type, code)
        if param is not None and param.type == "reference":
            alternatives.append(Criterion(resource_type, param, kind, (f"{kind}/{owner}",)))
    if not alternatives:
        raise Forbidden(DENIED)  # the type has no member in that compartment
    return AnyOf(tuple(alternatives))


def members_query(decision: AccessDecision, resource_type: str) -> SearchQuery | None:
    """The confined search a `resource_type` resource must match; None: every one may be seen."""
    conditions = confinement(decision, resource_type)
    return SearchQuery(resource_type, conditions) if conditions else None


def history_filters(
    principal: Principal | None, decision: AccessDecision, resource_type: str | None
) -> tuple[TypeFilter, ...] | None:
    """What a history shows (None: everything). System history of a confined principal covers
    the types it may search, each confined by its own decision."""
    if not confines(decision):
        return None
    if resource_type is not None:
        return (TypeFilter(resource_type, members_query(decision, resource_type)),)
    if principal is None:
        raise unauthorized()
    filters: list[TypeFilter] = []
    for each in registry.resource_types():
        allowed = authorize(principal, "history-type", each)
        if allowed.allowed:
            filters.append(TypeFilter(each, members_query(allowed, each)))
    return tuple(filters)


def visible(decision: AccessDecision, resource: Mapping[str, Any]) -> bool:
    """Whether a body (e.g. an older version) may be shown under `decision`: in the compartment,
    and not known to fail the restrictions (those a body cannot be judged on were already
    applied by the search that found the resource)."""
    if decision.compartment is not None and not in_compartment(resource, decision.compartment):
        return False
    return not decision.filters or any_matches(resource, decision.filters) is not False


def version_visible(decision: AccessDecision, stored: StoredVersion) -> bool:
    """`visible` for a stored version; a deletion (no body) shows nothing of anyone's."""
    if not confines(decision) or stored.body is None:
        return True
    return visible(decision, parse_object(stored.body, "stored resource"))


def writable(decision: AccessDecision, resource: Mapping[str, Any]) -> bool:
    """Whether a confined principal may change or leave behind this body: in its compartment
    and in no other patient's, and surely matching the restrictions of the write scope."""
    if decision.compartment is not None and not only_in_compartment(resource, decision.compartment):
        return False
    return not decision.filters or any_matches(resource, decision.filters) is True


def _all_of(resource_type: str, criteria: tuple[tuple[str, str], ...]) -> Condition:
    query = parse_query(resource_type, list(criteria), Limits(1))
    if query.ignored or len(query.conditions) != len(criteria):
        # a restriction this server cannot apply must not silently widen access
        raise Forbidden(f"A restriction of the access token cannot be applied to {resource_type}.")
    if len(query.conditions) == 1:
        return query.conditions[0]
    return AllOf(tuple(query.conditions))
