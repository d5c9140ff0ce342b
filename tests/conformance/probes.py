"""Queries built from one index value of an official example: some must find the example, one
near miss must not (R4 `search.html`, one form per parameter type).

`probes(resource_type, name, value)` gives, for the value `extract()` produced under `name` (a
parameter code, or a derived `<code>:identifier` / `<code>:of-type`), the queries to run, each
restricted by the harness to the example's `_id`:

- string: a prefix of the normalized value and `:exact` with the exact value find it; the value
  followed by `zzz`, and `:exact` with a strict prefix, do not;
- token: `system|code` (or `code`, `system|`, `:text` for a text-only concept) finds it; the code
  followed by `x` does not;
- date: `eq` at the value's own precision (or `ge`start and `le`end for a period) finds it; the
  same a year later does not;
- number, quantity: the value (with `|system|code`) finds it; value * 10 + 1000 does not;
- reference: `Type/id` (or the url as written) finds it; the id (url) followed by `x` does not;
- uri: the exact uri finds it; the uri followed by `x` does not;
- composite: `a$b` from its components finds it; the first component's near miss does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from santinel.fhir.dates import EPOCH, parse_period
from santinel.fhir.search import registry
from santinel.fhir.search.convert_date import DATE_MAX, DATE_MIN
from santinel.fhir.search.identifying import protection
from santinel.fhir.search.normalize import MAX_INDEXED
from santinel.fhir.search.values import (
    CompositeValue,
    DateValue,
    ExtractedValue,
    IndexValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
)
from santinel.storage.sql.search.blind import MAX_PREFIX, MIN_PREFIX, PREFIXED

Span = tuple[int, int]  # earliest start, latest end of a parameter's dates
SPECIAL = re.compile(r"([\\,$|])")
SECOND = 1_000_000
DAY = 86_400 * SECOND
YEAR_LATER = 366 * DAY
CONTAINED = "contained references (`#id`) only, which R4 searches through `_contained`, not by id"
BARE = "relative references that are not `Type/id` only (e.g. a bare id in a canonical)"


@dataclass(frozen=True)
class Probe:
    """One query: its parameters (besides `_id`) and whether the example must be found."""

    label: str
    params: tuple[tuple[str, str], ...]
    found: bool

    def describe(self) -> str:
        return "&".join(f"{name}={value}" for name, value in self.params)


@dataclass(frozen=True)
class Forms:
    """What a value gives as search criteria: those that match it, one near miss that must not."""

    matching: tuple[str, ...]
    near_miss: str


def escape(text: str) -> str:
    """R4 `search.html#escaping`: `\\`, `,`, `$` and `|` are escaped with a backslash."""
    return SPECIAL.sub(r"\\\1", text)


def probes(
    resource_type: str, name: str, value: ExtractedValue, span: Span | None = None
) -> list[Probe] | str:
    """The queries for `value` of parameter `name`, or why no query can express it. A date's
    near miss falls outside `span`, from the earliest start to the latest end of the parameter's
    values in the resource (another value must not match it either)."""
    match value:
        case StringValue():
            return _string(resource_type, name, value)
        case TokenValue() if value.code is None and value.system is None:
            return _token_text(name, value.text)
        case ReferenceValue() if value.target_id is None and value.url.startswith("#"):
            return CONTAINED
        case ReferenceValue() if value.target_id is None and not _absolute(value.url):
            return BARE
        case CompositeValue():
            return _composite(resource_type, name, value)
    forms = criteria(value, name, span)
    if forms is None:
        return "no value a query can express"
    return [
        Probe("match", tuple((name, text) for text in forms.matching), True),
        Probe("near miss", ((name, forms.near_miss),), False),
    ]


def criteria(value: IndexValue, name: str = "", span: Span | None = None) -> Forms | None:
    match value:
        case TokenValue():
            return _token(value, of_type=name.endswith(":of-type"))
        case DateValue():
            return _date(value, span or (value.start, value.end))
        case NumberValue():
            return Forms((number(value.value),), number(value.value * 10 + 1000))
        case QuantityValue():
            return _quantity(value)
        case ReferenceValue():
            return _reference(value)
        case UriValue():
            return Forms((escape(value.value),), escape(value.value + "x"))
        case StringValue():
            return Forms((escape(value.normalized),), escape(value.normalized + "zzz"))
    return None


def _string(resource_type: str, name: str, value: StringValue) -> list[Probe]:
    prefix = value.normalized[: max(1, len(value.normalized) // 2)].rstrip()
    if protection(resource_type, name) is not None:
        # a blind index matches whole values and, on names and cities, prefixes of 3 to 20
        shortest = value.normalized[:MIN_PREFIX].rstrip()
        prefix = value.normalized if len(shortest) < MIN_PREFIX else prefix[:MAX_PREFIX]
        prefix = prefix if len(prefix) >= MIN_PREFIX else shortest
        prefix = prefix if name in PREFIXED else value.normalized
    # Strings are indexed on their first MAX_INDEXED normalized characters; a longer search
    # value is compared on as many, so the near miss differs within them.
    near_miss = value.normalized[: MAX_INDEXED - 3] + "zzz"
    found = [
        Probe("prefix", ((name, escape(prefix)),), True),
        Probe("exact", ((f"{name}:exact", escape(value.exact)),), True),
        Probe("near miss", ((name, escape(near_miss)),), False),
    ]
    if len(value.exact) > 1:
        shorter = escape(value.exact[:-1])
        found.append(Probe("exact near miss", ((f"{name}:exact", shorter),), False))
    return found


def _token_text(name: str, text: str | None) -> list[Probe] | str:
    if not text:
        return "no value a query can express"
    return [
        Probe("text", ((f"{name}:text", escape(text)),), True),
        Probe("text near miss", ((f"{name}:text", escape(text + "zzz")),), False),
    ]


def _token(value: TokenValue, of_type: bool) -> Forms | None:
    system, code = value.system, value.code
    if code is None:
        if system is None:
            return None
        return Forms((escape(system) + "|",), escape(system + "x") + "|")
    code_text = "|".join(map(escape, code.split("|", 1))) if of_type else escape(code)
    head = "" if system is None else escape(system) + "|"
    return Forms((head + code_text,), head + code_text + "x")


def _quantity(value: QuantityValue) -> Forms:
    unit = value.code or value.unit
    suffix = ""
    if unit is not None:
        suffix = f"|{escape(value.system) if value.code and value.system else ''}|{escape(unit)}"
    return Forms((number(value.value) + suffix,), number(value.value * 10 + 1000) + suffix)


def _absolute(url: str) -> bool:
    return "://" in url or url.startswith("urn:")


def _reference(value: ReferenceValue) -> Forms:
    if value.target_type and value.target_id:
        typed = f"{value.target_type}/{value.target_id}"
        return Forms((escape(typed),), escape(typed + "x"))
    return Forms((escape(value.url),), escape(value.url + "x"))


def number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


# Dates


def _date(value: DateValue, span: Span) -> Forms | None:
    earliest, latest = min(span[0], value.start), max(span[1], value.end)
    precise = date_text(value.start, value.end)
    if precise is not None and latest < DATE_MAX - YEAR_LATER:
        later = date_text_at(latest + YEAR_LATER, value.end - value.start)
        return Forms((precise,), later or "ge" + instant(latest + YEAR_LATER))
    matching = []
    if value.start > DATE_MIN:
        matching.append("ge" + instant(value.start))
    if value.end < DATE_MAX:
        matching.append("le" + instant(value.end))
    if latest < DATE_MAX - YEAR_LATER:
        return Forms(tuple(matching), "ge" + instant(latest + YEAR_LATER))
    if earliest > DATE_MIN + YEAR_LATER:
        return Forms(tuple(matching), "le" + instant(earliest - YEAR_LATER))
    return None  # the parameter's values cover all time: nothing is a near miss


def moment(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def instant(micros: int) -> str:
    return _day(moment(micros)) + moment(micros).strftime("T%H:%M:%S.%fZ")


def _day(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}-{at.day:02d}"


def date_text(start: int, end: int) -> str | None:
    """The FHIR date whose precision denotes exactly [start, end], if there is one."""
    text = date_text_at(start, end - start)
    if text is None:
        return None
    period = parse_period(text)
    return text if (period.start, period.end) == (start, end) else None


def date_text_at(start: int, span: int) -> str | None:
    """`start` written at the precision a period of `span + 1` microseconds has."""
    at = moment(start)
    length = span + 1
    if 365 * DAY <= length <= 366 * DAY:
        return _day(at)[:4]
    if 28 * DAY <= length <= 31 * DAY:
        return _day(at)[:7]
    if length == DAY:
        return _day(at)
    if length == 60 * SECOND:
        return _day(at) + at.strftime("T%H:%MZ")
    if length == SECOND:
        return _day(at) + at.strftime("T%H:%M:%SZ")
    for digits in range(1, 7):
        if length == 10 ** (6 - digits):
            return _day(at) + at.strftime("T%H:%M:%S.%f")[: 10 + digits] + "Z"
    return None


# Composites


def _composite(resource_type: str, name: str, value: CompositeValue) -> list[Probe] | str:
    definition = registry.param(resource_type, name)
    if definition is None:
        return "not a parameter of this type"
    parts: list[Forms] = []
    for component in definition.components:
        usable = (criteria(v) for v in value.components if v.param == component.code)
        forms = next((f for f in usable if f is not None), None)
        if forms is None:
            return f"no value of the component {component.code} a query can express"
        parts.append(forms)
    matching = "$".join(p.matching[0] for p in parts)
    near_miss = "$".join([parts[0].near_miss, *(p.matching[0] for p in parts[1:])])
    return [
        Probe("match", ((name, matching),), True),
        Probe("near miss", ((name, near_miss),), False),
    ]
