"""Applying access decisions on every path of the FHIR API (deny by default).

`require` turns a `Principal` and an interaction into an `AccessDecision` or an error: no
principal → 401, no covering scope → 403. Searches also check every type a query reaches
(chained, `_has`, `_include`/`_revinclude`) so that none of them becomes an oracle.

Decisions that confine a principal to a patient compartment or to v2 query restrictions are
pushed into the search query itself; on the paths where that is not yet done (history, writes,
bundles, includes) such principals are refused rather than served unfiltered.
"""

from __future__ import annotations

from santinel.auth.policy import AccessDecision, authorize
from santinel.auth.principal import Principal
from santinel.auth.scopes import parse_scopes
from santinel.errors import Forbidden
from santinel.fhir.search import registry
from santinel.fhir.search.query import (
    AllOf,
    AnyOf,
    Chained,
    Condition,
    Criterion,
    Reverse,
    SearchQuery,
    parse_condition,
)
from santinel.services.authn import unauthorized

# The operator's own tools (`santinel load`, `santinel demo`) act with full system access.
OPERATOR = Principal("santinel-operator", "internal", parse_scopes("system/*.cruds"))
DENIED = "The access token does not allow this request."


def require(principal: Principal | None, interaction: str, resource_type: str) -> AccessDecision:
    if principal is None:
        raise unauthorized()
    decision = authorize(principal, interaction, resource_type)
    if not decision.allowed:
        raise Forbidden(DENIED)
    return decision


def may_read(principal: Principal | None, resource_type: str) -> bool:
    """Whether `principal` reads `resource_type` unconfined (included resources are not
    filtered by compartment yet, so confined access does not get them)."""
    if principal is None:
        return False
    decision = authorize(principal, "read", resource_type)
    return decision.allowed and decision.compartment is None and not decision.filters


def require_unconfined(decision: AccessDecision) -> None:
    """Refuse compartment- or filter-confined access on paths that cannot apply it yet."""
    if decision.compartment is not None or decision.filters:
        raise Forbidden("This request is not available to patient-scoped access tokens yet.")


def constrain(query: SearchQuery, decision: AccessDecision, principal: Principal | None) -> None:
    """Push the decision into the query and check every type the query reaches."""
    for condition in query.conditions:
        for reached in _types_reached(condition):
            require_unconfined(require(principal, "search-type", reached))
    for include in [*query.includes, *query.revincludes]:
        require_unconfined(decision)
        if include.source_type != "*":
            require(principal, "read", include.source_type)
    query.conditions.extend(confinement(decision, query.resource_type))


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


def _all_of(resource_type: str, criteria: tuple[tuple[str, str], ...]) -> Condition:
    parsed = tuple(parse_condition(resource_type, name, value, 1) for name, value in criteria)
    if len(parsed) == 1:
        return parsed[0]
    return AllOf(parsed)


def _types_reached(condition: Condition) -> list[str]:
    match condition:
        case Chained():
            return [condition.target_type, *_types_reached(condition.inner)]
        case Reverse():
            return [condition.source_type, *_types_reached(condition.inner)]
        case AnyOf() | AllOf():
            return [t for c in condition.conditions for t in _types_reached(c)]
        case _:
            return []
