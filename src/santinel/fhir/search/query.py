"""Parse a search's query parameters into a typed `SearchQuery` (R4 `search.html`).

Parsing knows the registry of official SearchParameters, so every criterion names a real
parameter of a real type; what cannot be understood is collected in `SearchQuery.ignored` (and
refused under `Prefer: handling=strict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from santinel.errors import InvalidSearch
from santinel.fhir.resource_types import is_resource_type
from santinel.fhir.search import registry
from santinel.fhir.search.escaping import or_values
from santinel.fhir.search.registry import SearchParam

RESULT_PARAMETERS = frozenset(
    {
        "_count",
        "_sort",
        "_summary",
        "_elements",
        "_format",
        "_pretty",
        "_total",
        "_include",
        "_revinclude",
        "_contained",
        "_containedType",
        "_getpages",
        "_offset",
        "_page",
    }
)
# Common parameters answered from the resource table itself rather than an index table.
RESOURCE_COLUMNS = frozenset({"_id", "_lastUpdated"})
UNSUPPORTED = frozenset({"_text", "_content", "_list", "_query", "_filter", "_type"})
MODIFIERS_BY_TYPE = {
    "string": {"exact", "contains", "missing"},
    "token": {"not", "text", "of-type", "missing"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "reference": {"identifier", "missing"},  # plus `:[type]`
    "uri": {"below", "above", "missing"},
    "composite": {"missing"},
}
TOTAL_MODES = ("none", "estimate", "accurate")


@dataclass(frozen=True)
class Criterion:
    """One parameter occurrence: its alternatives are OR-ed; criteria are AND-ed."""

    resource_type: str
    param: SearchParam
    modifier: str | None
    values: tuple[str, ...]


@dataclass(frozen=True)
class Chained:
    """`ref:Type.inner` (forward chain) — resources whose `ref` points at a match of `inner`."""

    resource_type: str
    reference: SearchParam
    target_type: str
    inner: Condition


@dataclass(frozen=True)
class Reverse:
    """`_has:Source:ref:inner` — resources referred to by a `Source` matching `inner`."""

    resource_type: str
    source_type: str
    reference: SearchParam
    inner: Condition


@dataclass(frozen=True)
class AnyOf:
    """Alternatives across parameters, e.g. the references that put a resource in a compartment."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AllOf:
    """Conditions that must all hold (a v2 scope restriction with several criteria)."""

    conditions: tuple[Condition, ...]


Condition = Criterion | Chained | Reverse | AnyOf | AllOf


@dataclass(frozen=True)
class SortKey:
    param: SearchParam
    descending: bool


@dataclass(frozen=True)
class Include:
    """`_include=Source:param[:Target]` or `_revinclude=…`; `*` includes every reference param."""

    source_type: str
    param: SearchParam | None  # None: `*`
    target_type: str | None
    iterate: bool


@dataclass
class SearchQuery:
    resource_type: str
    conditions: list[Condition] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    total: str | None = None
    summary: str | None = None
    elements: str | None = None
    ignored: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    max_chain_depth: int = 3


def parse_criteria(resource_type: str, criteria: Sequence[tuple[str, str]]) -> SearchQuery:
    """The criteria of a conditional operation (`If-None-Exist`, conditional update or delete):
    unlike a search, an unknown parameter is refused, not ignored (it would widen the match)."""
    query = parse_query(resource_type, list(criteria))
    if query.ignored:
        raise InvalidSearch(
            f"Unsupported search parameter(s) in the condition: {', '.join(query.ignored)}.",
            issue_code="not-supported",
        )
    return query


def parse_query(
    resource_type: str, params: list[tuple[str, str]], limits: Limits = Limits()
) -> SearchQuery:
    query = SearchQuery(resource_type)
    for name, value in params:
        base = name.split(":", 1)[0]
        if base in RESULT_PARAMETERS:
            _result_parameter(query, base, name, value)
            continue
        try:
            query.conditions.append(
                parse_condition(resource_type, name, value, limits.max_chain_depth)
            )
        except _Unknown as unknown:
            query.ignored.append(unknown.reason)
    return query


class _Unknown(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_condition(resource_type: str, name: str, value: str, depth: int) -> Condition:
    if name.startswith("_has:"):
        return _reverse(resource_type, name, value, depth)
    head, dot, rest = name.partition(".")
    if dot:
        return _chained(resource_type, head, rest, value, depth)
    code, _, modifier = name.partition(":")
    param = _param(resource_type, code, name)
    return Criterion(
        resource_type, param, _modifier(param, modifier or None, name), tuple(or_values(value))
    )


def _param(resource_type: str, code: str, name: str) -> SearchParam:
    if code in UNSUPPORTED:
        raise _Unknown(f"{name} (not supported by this server)")
    param = registry.param(resource_type, code)
    if param is None:
        raise _Unknown(f"{name} (not a search parameter of {resource_type})")
    if param.type == "special":
        raise _Unknown(f"{name} (special parameters are not supported)")
    return param


def _modifier(param: SearchParam, modifier: str | None, name: str) -> str | None:
    if modifier is None:
        return None
    if param.type == "reference" and is_resource_type(modifier):
        if param.targets and modifier not in param.targets:
            raise InvalidSearch(f"{name}: {param.code} cannot refer to a {modifier}.")
        return modifier
    if modifier not in MODIFIERS_BY_TYPE.get(param.type, set()):
        raise InvalidSearch(
            f"The modifier ':{modifier}' is not supported on the {param.type} "
            f"parameter '{param.code}'.",
            issue_code="not-supported",
        )
    return modifier


def _reference_targets(param: SearchParam, explicit: str | None, name: str) -> tuple[str, ...]:
    if param.type != "reference":
        raise InvalidSearch(f"{name}: only reference parameters can be chained.")
    if explicit:
        if not is_resource_type(explicit) or (param.targets and explicit not in param.targets):
            raise InvalidSearch(f"{name}: {param.code} cannot refer to a {explicit}.")
        return (explicit,)
    if not param.targets:
        raise InvalidSearch(f"{name}: name the target type, e.g. {param.code}:Patient.")
    return param.targets


def _chained(resource_type: str, head: str, rest: str, value: str, depth: int) -> Condition:
    """A chain through a reference that may point at several types is searched on every target
    type that has the chained parameter (as HAPI does), unless `ref:Type` narrows it."""
    if depth <= 0:
        raise InvalidSearch("The chain is longer than this server allows.", issue_code="too-costly")
    code, _, explicit = head.partition(":")
    reference = _param(resource_type, code, head)
    links: list[Condition] = []
    for target in _reference_targets(reference, explicit or None, head):
        try:
            inner = parse_condition(target, rest, value, depth - 1)
        except _Unknown:
            continue
        links.append(Chained(resource_type, reference, target, inner))
    if not links:
        raise _Unknown(f"{head}.{rest} (no target of {code} has that parameter)")
    return links[0] if len(links) == 1 else AnyOf(tuple(links))


def _reverse(resource_type: str, name: str, value: str, depth: int) -> Reverse:
    if depth <= 0:
        raise InvalidSearch(
            "The _has chain is longer than this server allows.", issue_code="too-costly"
        )
    parts = name.split(":", 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise InvalidSearch(f"{name}: _has takes the form _has:Type:reference:parameter.")
    _, source, ref_code, inner_name = parts
    if not is_resource_type(source):
        raise InvalidSearch(f"{name}: '{source}' is not a resource type.")
    reference = _param(source, ref_code, name)
    if reference.type != "reference" or (
        reference.targets and resource_type not in reference.targets
    ):
        raise InvalidSearch(f"{name}: {source}.{ref_code} does not refer to a {resource_type}.")
    inner = parse_condition(source, inner_name, value, depth - 1)
    return Reverse(resource_type, source, reference, inner)


def _result_parameter(query: SearchQuery, base: str, name: str, value: str) -> None:
    match base:
        case "_sort":
            query.sort = [_sort_key(query.resource_type, k) for k in value.split(",") if k]
        case "_include" | "_revinclude":
            include = _include(name, value)
            (query.includes if base == "_include" else query.revincludes).append(include)
        case "_total":
            if value not in TOTAL_MODES:
                raise InvalidSearch(f"_total must be one of {', '.join(TOTAL_MODES)}.")
            query.total = value
        case "_summary":
            query.summary = value
        case "_elements":
            query.elements = value
        case "_contained" | "_containedType":
            if value not in ("false", "container"):
                query.ignored.append(f"{name}={value} (contained resources are not searched)")


def _sort_key(resource_type: str, key: str) -> SortKey:
    descending = key.startswith("-")
    code = key.lstrip("-")
    param = registry.param(resource_type, code)
    if param is None or param.type in ("special", "composite"):
        raise InvalidSearch(f"_sort: '{code}' is not a sortable parameter of {resource_type}.")
    return SortKey(param, descending)


def _include(name: str, value: str) -> Include:
    iterate = name.endswith(":iterate") or name.endswith(":recurse")
    parts = value.split(":")
    if value == "*":
        return Include("*", None, None, iterate)
    if len(parts) not in (2, 3) or not is_resource_type(parts[0]):
        raise InvalidSearch(f"{name}={value}: expected Type:parameter[:TargetType].")
    source, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if code == "*":
        return Include(source, None, target, iterate)
    param = registry.param(source, code)
    if param is None or param.type != "reference":
        raise InvalidSearch(f"{name}={value}: '{code}' is not a reference parameter of {source}.")
    if target is not None and not is_resource_type(target):
        raise InvalidSearch(f"{name}={value}: '{target}' is not a resource type.")
    return Include(source, param, target, iterate)
