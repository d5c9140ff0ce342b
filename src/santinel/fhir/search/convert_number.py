"""Number and quantity index values (R4 `search.html#number`, `#quantity`).

A value stands for the range its precision implies: `100` is [99.5, 100.5], `1.50` is
[1.495, 1.505]. The precision is read from a `Decimal` when the caller parsed JSON numbers so;
from a float it is that of its shortest representation (`1.50` parsed as a float reads `1.5`).
A Range is indexed as [low's lower bound, high's upper bound], an open end being infinite.
Money is a quantity whose system is ISO 4217 and code the currency. SampledData is not indexed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from santinel.fhir.search.fhirpath import Node
from santinel.fhir.search.values import NumberValue, QuantityValue

CURRENCY_SYSTEM = "urn:iso:std:iso:4217"
QUANTITY_TYPES = {
    "Quantity",
    "SimpleQuantity",
    "MoneyQuantity",
    "Age",
    "Count",
    "Distance",
    "Duration",
}


def precision_range(value: Any) -> tuple[float, float, float] | None:
    """(value, low, high) for a JSON number; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    exact = value if isinstance(value, Decimal) else Decimal(repr(value))
    exponent = exact.as_tuple().exponent
    if not isinstance(exponent, int):
        return None
    half = Decimal(5).scaleb(exponent - 1)
    return float(exact), float(exact - half), float(exact + half)


def number_values(param: str, node: Node) -> Iterator[NumberValue]:
    data = node.data
    if isinstance(data, Mapping):
        data = data.get("value") if node.type != "Range" and "value" in data else data
    if isinstance(data, Mapping):
        bounds = _range(data)
        if bounds is not None:
            yield NumberValue(param, bounds[0], bounds[1], bounds[2])
        return
    found = precision_range(data)
    if found is not None:
        yield NumberValue(param, *found)


def quantity_values(param: str, node: Node) -> Iterator[QuantityValue]:
    data = node.data
    if not isinstance(data, Mapping):
        found = precision_range(data)
        if found is not None:
            yield QuantityValue(param, *found, None, None, None)
        return
    kind = node.type or _guess(data)
    if kind == "Range":
        bounds = _range(data)
        unit = _first_quantity(data)
        if bounds is not None:
            yield QuantityValue(param, *bounds, *_units(unit))
    elif kind == "Money":
        found = precision_range(data.get("value"))
        currency = data.get("currency")
        if found is not None:
            code = currency if isinstance(currency, str) else None
            yield QuantityValue(param, *found, CURRENCY_SYSTEM if code else None, code, code)
    elif kind in QUANTITY_TYPES:
        found = precision_range(data.get("value"))
        if found is not None:
            yield QuantityValue(param, *found, *_units(data))


def _guess(data: Mapping[str, Any]) -> str | None:
    if "low" in data or "high" in data:
        return "Range"
    if "currency" in data:
        return "Money"
    return "Quantity" if "value" in data else None


def _range(data: Mapping[str, Any]) -> tuple[float, float, float] | None:
    low = _bound(data.get("low"))
    high = _bound(data.get("high"))
    if low is None and high is None:
        return None
    value = low[0] if low is not None else high[0] if high is not None else 0.0
    return value, (low[1] if low else -math.inf), (high[2] if high else math.inf)


def _bound(quantity: Any) -> tuple[float, float, float] | None:
    return precision_range(quantity.get("value")) if isinstance(quantity, Mapping) else None


def _first_quantity(data: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in ("low", "high"):
        if isinstance(data.get(key), Mapping):
            return data[key]  # type: ignore[no-any-return]
    return {}


def _units(data: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) and value else None

    return text("system"), text("code"), text("unit")
