"""Compile parsed search conditions into SQL over a `resource` row alias.

Every criterion becomes `alias.res_id IN (SELECT res_id FROM <index table> WHERE …)`: a
semi-join driven by the index, so a query's cost follows its result, not the table size.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, and_, false, or_, select, true
from sqlalchemy.sql.util import ClauseAdapter

from santinel.errors import InvalidSearch
from santinel.fhir.dates import parse_date_criterion
from santinel.fhir.search.escaping import split_unescaped, unescape
from santinel.fhir.search.query import AllOf, AnyOf, Chained, Condition, Criterion, Reverse
from santinel.storage.sql.search import (
    composites,
    dates,
    numbers,
    references,
    strings,
    tokens,
    uris,
)
from santinel.storage.sql.search.blind import Blinded
from santinel.storage.sql.tables import (
    resource,
    search_composite,
    search_date,
    search_number,
    search_quantity,
    search_reference,
    search_string,
    search_token,
    search_uri,
)

TABLE_BY_TYPE: dict[str, Table] = {
    "string": search_string,
    "token": search_token,
    "date": search_date,
    "number": search_number,
    "quantity": search_quantity,
    "reference": search_reference,
    "uri": search_uri,
    "composite": search_composite,
}


def compile_condition(condition: Condition, alias: Any) -> Any:
    match condition:
        case Criterion():
            return _criterion(condition, alias)
        case Chained():
            return alias.c.res_id.in_(_chained_ids(condition))
        case Reverse():
            return alias.c.res_id.in_(_reverse_ids(condition))
        case AnyOf():
            return or_(*(compile_condition(c, alias) for c in condition.conditions))
        case AllOf():
            return and_(*(compile_condition(c, alias) for c in condition.conditions))


def _criterion(criterion: Criterion, alias: Any) -> Any:
    if isinstance(criterion, Blinded):  # a protected parameter, already a subquery of ids
        column = alias.c.res_id
        return column.notin_(criterion.ids) if criterion.negate else column.in_(criterion.ids)
    code, modifier, values = criterion.param.code, criterion.modifier, criterion.values
    if code == "_id":
        return _id_condition(alias, modifier, values)
    if code == "_lastUpdated":
        if modifier == "missing":
            return _always_present(values)
        return or_(*(parse_date_criterion(v).condition(alias.c.last_updated) for v in values))
    if modifier == "missing":
        return _missing(criterion, alias)
    table, param, condition = index_rows(criterion)
    ids = _index_ids(table, criterion.resource_type, param, condition)
    if modifier == "not":
        return alias.c.res_id.notin_(ids)
    return alias.c.res_id.in_(ids)


def index_rows(criterion: Criterion) -> tuple[Table, str, Any]:
    """(index table, indexed parameter, condition on a row): a resource matches when one row of
    its own meets the condition (`:not`, negated by the caller, when none does)."""
    code, modifier, values = criterion.param.code, criterion.modifier, criterion.values
    if modifier == "identifier":
        return search_token, f"{code}:identifier", or_(*(tokens.system_code(v) for v in values))
    if criterion.param.type == "token" and modifier == "of-type":
        return search_token, f"{code}:of-type", tokens.condition(modifier, values)
    if criterion.param.type == "composite":
        return search_composite, code, composites.condition(criterion.param, values)
    table = TABLE_BY_TYPE.get(criterion.param.type)
    if table is None:
        raise InvalidSearch(
            f"Searching by '{code}' ({criterion.param.type}) is not supported.",
            issue_code="not-supported",
        )
    return table, code, value_condition(criterion)


def index_join(condition: Condition, alias: Any) -> tuple[Any, Any] | None:
    """(index table alias, join condition) when `condition` is met by one index row of the
    resource (a plain criterion), else None (`IN` / `NOT IN` subqueries stay for the rest).

    Joined, the criteria of one search let the planner start from the most selective one and
    look each candidate's rows of the others up by (res_type, res_id, param); as `IN`
    subqueries, SQLite reads every row matching each criterion (`Observation?patient=X&code=Y`
    reads the code's rows of all patients: a cost growing with the table, not the result)."""
    if not isinstance(condition, Criterion) or isinstance(condition, Blinded):
        return None
    if condition.param.code in ("_id", "_lastUpdated") or condition.modifier in ("missing", "not"):
        return None
    table, param, where = index_rows(condition)
    rows = table.alias()
    on = and_(
        rows.c.res_type == condition.resource_type,
        rows.c.param == param,
        rows.c.res_id == alias.c.res_id,
        ClauseAdapter(rows).traverse(where),
    )
    return rows, on


def value_condition(criterion: Criterion) -> Any:
    modifier, values = criterion.modifier, criterion.values
    match criterion.param.type:
        case "string":
            return strings.condition(modifier, values)
        case "token":
            return tokens.condition(None if modifier == "not" else modifier, values)
        case "date":
            return dates.condition(values)
        case "number":
            return numbers.number_condition(values)
        case "quantity":
            return numbers.quantity_condition(values)
        case "reference":
            return references.condition(criterion.param, modifier, values)
        case _:
            return uris.condition(modifier, values)


def _index_ids(table: Table, resource_type: str, param: str, condition: Any) -> Any:
    return select(table.c.res_id).where(
        table.c.res_type == resource_type, table.c.param == param, condition
    )


def _id_condition(alias: Any, modifier: str | None, values: tuple[str, ...]) -> Any:
    if modifier == "missing":
        return _always_present(values)
    ids = [i for i in map(_plain_id, values) if i]
    if modifier == "not":
        return alias.c.res_id.notin_(ids)
    return alias.c.res_id.in_(ids)


def _plain_id(value: str) -> str | None:
    """`id` or `|id` (a token without system): ids have no system, `system|id` matches none."""
    parts = split_unescaped(value, "|")
    if len(parts) == 1:
        return unescape(value)
    return unescape(parts[1]) if len(parts) == 2 and not parts[0] else None


def _always_present(values: tuple[str, ...]) -> Any:
    """`:missing` on what every resource has (`_id`, `_lastUpdated`)."""
    if values[0] not in ("true", "false"):
        raise InvalidSearch(":missing takes true or false.")
    return false() if values[0] == "true" else true()


def _missing(criterion: Criterion, alias: Any) -> Any:
    if criterion.values[0] not in ("true", "false"):
        raise InvalidSearch(":missing takes true or false.")
    table = TABLE_BY_TYPE.get(criterion.param.type, search_token)
    present = select(table.c.res_id).where(
        table.c.res_type == criterion.resource_type, table.c.param == criterion.param.code
    )
    if criterion.values[0] == "true":
        return alias.c.res_id.notin_(present)
    return alias.c.res_id.in_(present)


def live_ids(resource_type: str, condition: Condition) -> Any:
    """Ids of live resources of `resource_type` matching `condition`."""
    inner = resource.alias()
    return select(inner.c.res_id).where(
        inner.c.res_type == resource_type,
        inner.c.deleted.is_(False),
        compile_condition(condition, inner),
    )


def _chained_ids(chain: Chained) -> Any:
    ref = search_reference.alias()
    return select(ref.c.res_id).where(
        ref.c.res_type == chain.resource_type,
        ref.c.param == chain.reference.code,
        ref.c.target_type == chain.target_type,
        ref.c.target_id.in_(live_ids(chain.target_type, chain.inner)),
    )


def _reverse_ids(reverse: Reverse) -> Any:
    ref = search_reference.alias()
    return select(ref.c.target_id).where(
        ref.c.res_type == reverse.source_type,
        ref.c.param == reverse.reference.code,
        ref.c.target_type == reverse.resource_type,
        ref.c.res_id.in_(live_ids(reverse.source_type, reverse.inner)),
    )
