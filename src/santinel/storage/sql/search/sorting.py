"""`_sort` (R4 `search.html#sort`): by any parameter, several keys, descending with `-`.

A resource with several values sorts by its smallest (ascending) or largest (descending) one;
resources without a value come last. The id breaks ties so the order is total and stable.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from santinel.fhir.search.query import SortKey
from santinel.storage.sql.tables import (
    search_date,
    search_number,
    search_quantity,
    search_reference,
    search_string,
    search_token,
    search_uri,
)

SORT_COLUMN = {
    "string": (search_string, "normalized"),
    "token": (search_token, "code"),
    "number": (search_number, "value"),
    "quantity": (search_quantity, "value"),
    "reference": (search_reference, "url"),
    "uri": (search_uri, "value"),
}


def order_by(keys: list[SortKey], alias: Any, resource_type: str) -> list[Any]:
    clauses = [_clause(key, alias, resource_type) for key in keys]
    return [*clauses, alias.c.res_id]


def _clause(key: SortKey, alias: Any, resource_type: str) -> Any:
    value = _value(key, alias, resource_type)
    ordered = value.desc() if key.descending else value.asc()
    return ordered.nulls_last()


def _value(key: SortKey, alias: Any, resource_type: str) -> Any:
    code = key.param.code
    if code == "_id":
        return alias.c.res_id
    if code == "_lastUpdated":
        return alias.c.last_updated
    if key.param.type == "date":
        table, column = search_date, ("end_us" if key.descending else "start_us")
    else:
        table, name = SORT_COLUMN[key.param.type]
        column = name
    aggregate = func.max if key.descending else func.min
    return (
        select(aggregate(table.c[column]))
        .where(
            table.c.res_type == resource_type,
            table.c.res_id == alias.c.res_id,
            table.c.param == code,
        )
        # One group (or none: NULL, as without it). Without GROUP BY, SQLite answers a lone
        # min()/max() by walking the (res_type, param, value) index in value order until a row of
        # this resource comes up: every row of the parameter, for each match (issue 3's scale
        # benchmark); grouped, it seeks the resource's own rows (res_type, res_id, param).
        .group_by(table.c.res_id)
        .scalar_subquery()
    )
