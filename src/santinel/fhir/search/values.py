"""Index values extracted from a resource at write time, one class per index table.

Each value names the search parameter (`param`, its code such as `birthdate`) it belongs to.
Strings are kept both `normalized` (lower case, accents removed: what `name=` matches against)
and `exact` (what `:exact` matches against).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StringValue:
    param: str
    normalized: str
    exact: str


@dataclass(frozen=True)
class TokenValue:
    param: str
    system: str | None
    code: str | None
    text: str | None = None  # normalized display/text, for `:text`


@dataclass(frozen=True)
class DateValue:
    param: str
    start: int  # microseconds since the epoch, UTC, inclusive
    end: int  # inclusive


@dataclass(frozen=True)
class NumberValue:
    param: str
    value: float
    low: float  # the implicit range given by the value's precision (R4 `search.html#number`)
    high: float


@dataclass(frozen=True)
class QuantityValue:
    param: str
    value: float
    low: float
    high: float
    system: str | None
    code: str | None
    unit: str | None


@dataclass(frozen=True)
class ReferenceValue:
    param: str
    target_type: str | None  # for relative and resolvable references
    target_id: str | None
    url: str  # the reference as written (absolute URLs, canonicals)


@dataclass(frozen=True)
class UriValue:
    param: str
    value: str


IndexValue = (
    StringValue | TokenValue | DateValue | NumberValue | QuantityValue | ReferenceValue | UriValue
)


@dataclass(frozen=True)
class CompositeValue:
    """One element matched by a composite parameter (e.g. one `Observation.component`) with the
    values of each of its components taken from that same element, in the definition's order.
    Each component value is named by the component parameter's code (`component-code`,
    `component-value-quantity`); a component may give several (a CodeableConcept with two
    codings gives two tokens). An element missing a component is not indexed."""

    param: str
    components: tuple[IndexValue, ...]


ExtractedValue = IndexValue | CompositeValue
