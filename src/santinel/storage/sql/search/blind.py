"""Blind indexes of identifying values (`santinel.fhir.search.identifying`): index rows at write
time, and searches rewritten into lookups of the same keyed digests (`crypto.blind_index`).

Terms of one value, each `HMAC(key of <Type>.<param>, kind ‖ value)`:

- strings (names, addresses): `v` the whole normalized value (case and accents folded), `x` the
  exact text and, for names (`name`, `family`, `given`) and cities, `p` each normalized prefix of
  3 to 20 characters shorter than the value (the value itself is its `v`: a prefix search looks
  up both). `name=dup` finds Dupont (prefix); a value shorter than 3 or longer than 20
  characters, and address lines, postal codes, states and phonetic names, find whole values;
  `:exact` the exact text; `:contains` is refused (no digest can answer it);
- tokens (identifiers, telecom): `c` the code (system kept in clear, so `system|code`, `|code`,
  `system|` and `:of-type` work), `t` the whole normalized text for `:text`;
- the birth date: the year in clear (a row in `search_date` covering the whole year: range
  searches, `_sort` by year), `v` the date at its own precision. A search decides whole years in
  clear and lists, for the years its bounds fall in, the digests of every date of that year that
  matches: exact answers for every prefix (`eq`, `ge`, `lt`, `sa`, `ap`…).

A value is written once per resource, under the most specific parameter that has it
(`identifying.COVERED_BY`, `TELECOM_OF_SYSTEM`): `family` and `given` are not repeated under
`name` nor `phonetic`, the city under `address`, a phone number under `phone`; a search on
`name` looks up its digests under `name`, `family` and `given` (each under its own key). Every
row costs a page write at a random place of the index on each commit: `bench.patients`' new
Patient writes 37 of them instead of 70.
"""

from __future__ import annotations

import dataclasses
from calendar import monthrange
from collections import defaultdict
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, false, or_, select, true, union

from santinel.crypto.blind_index import BlindTerms
from santinel.errors import InvalidSearch
from santinel.fhir.dates import EPOCH, parse_period
from santinel.fhir.search.escaping import split_unescaped, unescape
from santinel.fhir.search.identifying import (
    COVERED_BY,
    TELECOM,
    TELECOM_OF_SYSTEM,
    Protection,
    blinded,
)
from santinel.fhir.search.normalize import MAX_INDEXED, normalize
from santinel.fhir.search.prefixes import split_prefix
from santinel.fhir.search.query import AllOf, AnyOf, Chained, Condition, Criterion, Reverse
from santinel.fhir.search.query import SearchQuery as Query
from santinel.fhir.search.registry import param as search_param
from santinel.fhir.search.values import DateValue, ExtractedValue, StringValue, TokenValue
from santinel.storage.sql.search.dates import (
    DAY_US,
    approximate_margin,
    period_matches,
    range_condition,
)
from santinel.storage.sql.tables import search_date, search_token

MIN_PREFIX = 3
MAX_PREFIX = 20
# Names and cities are searched by their beginning; address lines, postal codes, states and
# phonetic names by whole values only (fewer digests per patient: cheaper writes, less leakage).
PREFIXED = frozenset({"name", "family", "given", "address-city"})
SEARCHED_AS_DIGESTS = (
    "identifying values are stored as keyed digests (blind indexes), which match whole values, "
    f"exact texts and, for names and cities, prefixes of {MIN_PREFIX} to {MAX_PREFIX} characters"
)


@dataclasses.dataclass(frozen=True)
class Blinded(Criterion):
    """A criterion on a protected parameter, already turned into a subquery of matching ids."""

    ids: Any = dataclasses.field(default=None, compare=False)
    negate: bool = False


# -- write side ------------------------------------------------------------------------------
class BlindRows:
    def __init__(self, blind: BlindTerms, plaintext_names: bool) -> None:
        self.blind = blind
        self.plaintext_names = plaintext_names

    def split(
        self, resource_type: str, values: list[ExtractedValue]
    ) -> tuple[list[ExtractedValue], list[dict[str, Any]]]:
        """(values indexed in clear, blind-index rows of `search_token`)."""
        plain: list[ExtractedValue] = []
        protected: list[ExtractedValue] = []
        for value in values:
            kind = blinded(resource_type, value.param, plaintext_names=self.plaintext_names)
            (plain if kind is None else protected).append(value)
        rows: list[dict[str, Any]] = []
        covered = _covered(protected)
        for value in protected:
            if value in covered:
                continue
            scope = f"{resource_type}.{value.param}"
            match value:
                case StringValue():
                    terms = self._string(scope, value, value.param in PREFIXED)
                    rows += [_row(value.param, None, t) for t in terms]
                case TokenValue():
                    rows += self._token(scope, value)
                case DateValue():
                    coarse, text = year_of(value.start), date_text(value.start, value.end)
                    if coarse is not None:
                        plain.append(DateValue(value.param, *coarse))
                    if text is not None:
                        rows.append(_row(value.param, None, self.blind.term(scope, "v", text)))
                case _:
                    plain.append(value)
        return plain, rows

    def _string(self, scope: str, value: StringValue, prefixes: bool) -> set[str]:
        normalized = value.normalized
        terms = {
            self.blind.term(scope, "v", normalized),
            self.blind.term(scope, "x", value.exact),
        }
        top = min(len(normalized), MAX_PREFIX) if prefixes else 0
        for length in range(MIN_PREFIX, top + 1):
            prefix = normalized[:length].rstrip()
            if prefix != normalized:  # the whole value: its `v` answers (`BlindSearch._string`)
                terms.add(self.blind.term(scope, "p", prefix))
        return terms

    def _token(self, scope: str, value: TokenValue) -> list[dict[str, Any]]:
        rows = []
        if value.code is not None or value.system is not None:
            code = value.code[:MAX_INDEXED] if value.code is not None else None
            term = self.blind.term(scope, "c", code) if code is not None else self._no_code(scope)
            rows.append(_row(value.param, value.system, term))
        if value.text:
            rows.append(_row(value.param, None, self.blind.term(scope, "t", value.text)))
        return rows

    def _no_code(self, scope: str) -> str:
        return self.blind.term(scope, "n", "")


def _row(param: str, system: str | None, term: str) -> dict[str, Any]:
    return {"param": param, "system": system, "code": term, "text": None}


def year_of(micros: int) -> tuple[int, int] | None:
    """The whole year `micros` falls in, as an indexed period."""
    try:
        year = (EPOCH + timedelta(microseconds=micros)).year
    except OverflowError:
        return None
    return _year_period(year)


@lru_cache(maxsize=1024)
def _year_period(year: int) -> tuple[int, int] | None:
    try:
        period = parse_period(f"{year:04d}")
    except InvalidSearch:
        return None
    return period.start, period.end


def date_text(start: int, end: int) -> str | None:
    """The date (year, month or day precision) denoting exactly [start, end], if any: the
    periods of `parse_period` (UTC), computed from `start` without parsing (a new Patient's
    birth date, on every write)."""
    if start % DAY_US:
        return None  # not a midnight, UTC
    try:
        day = EPOCH + timedelta(microseconds=start)
    except OverflowError:
        return None
    year, month = day.year, day.month
    if year == 9999:  # periods there end at datetime's last instant, not a day later
        texts = (f"{year:04d}", f"{year:04d}-{month:02d}", f"{year:04d}-{month:02d}-{day.day:02d}")
        periods = [parse_period(text) for text in texts]
        return next(
            (t for t, p in zip(texts, periods, strict=True) if (p.start, p.end) == (start, end)),
            None,
        )
    if end == start + DAY_US - 1:
        return f"{year:04d}-{month:02d}-{day.day:02d}"
    if day.day != 1:
        return None
    if end == start + monthrange(year, month)[1] * DAY_US - 1:
        return f"{year:04d}-{month:02d}"
    whole = _year_period(year) if month == 1 else None
    return f"{year:04d}" if whole == (start, end) else None


def _covered(protected: list[ExtractedValue]) -> set[ExtractedValue]:
    """The protected values another protected parameter of the resource indexes already
    (the same text, or the same `telecom` token): written once, under that one."""
    strings: dict[str, set[tuple[str, str]]] = defaultdict(set)
    telecom: set[tuple[str | None, str | None, str | None]] = set()
    for value in protected:
        if isinstance(value, StringValue):
            strings[value.param].add((value.normalized, value.exact))
        elif isinstance(value, TokenValue) and value.param == TELECOM:
            telecom.add((value.system, value.code, value.text))
    covered: set[ExtractedValue] = set()
    for value in protected:
        if isinstance(value, StringValue):
            text = (value.normalized, value.exact)
            if any(text in strings[other] for other in COVERED_BY.get(value.param, ())):
                covered.add(value)
        elif isinstance(value, TokenValue) and value.param in TELECOM_OF_SYSTEM:
            same = value.system == TELECOM_OF_SYSTEM[value.param]
            if same and (value.system, value.code, value.text) in telecom:
                covered.add(value)
    return covered


# -- read side -------------------------------------------------------------------------------


class BlindSearch:
    """Rewrites the criteria of a parsed search that name protected parameters."""

    def __init__(self, blind: BlindTerms, plaintext_names: bool) -> None:
        self.blind = blind
        self.plaintext_names = plaintext_names

    def query(self, query: Query) -> Query:
        for key in query.sort:
            kind = self._kind(query.resource_type, key.param.code)
            if kind is not None and kind != "birthdate":
                raise InvalidSearch(
                    f"_sort by '{key.param.code}' is not available: {SEARCHED_AS_DIGESTS}.",
                    issue_code="not-supported",
                )
        conditions = [self.condition(c) for c in query.conditions]
        return dataclasses.replace(query, conditions=conditions)

    def condition(self, condition: Condition) -> Condition:
        match condition:
            case Blinded():
                return condition
            case Criterion():
                return self._criterion(condition)
            case Chained() | Reverse():
                return dataclasses.replace(condition, inner=self.condition(condition.inner))
            case AnyOf() | AllOf():
                inner = tuple(self.condition(c) for c in condition.conditions)
                return dataclasses.replace(condition, conditions=inner)

    def _kind(self, resource_type: str, index_param: str) -> Protection | None:
        return blinded(resource_type, index_param, plaintext_names=self.plaintext_names)

    def _criterion(self, criterion: Criterion) -> Condition:
        code, modifier = criterion.param.code, criterion.modifier
        index_param = code
        if modifier == "identifier":
            index_param = f"{code}:identifier"
        elif modifier == "of-type" and criterion.param.type == "token":
            index_param = f"{code}:of-type"
        kind = self._kind(criterion.resource_type, index_param)
        if kind is None or (kind == "birthdate" and modifier == "missing"):
            return criterion
        if kind == "birthdate":
            scope = f"{criterion.resource_type}.{index_param}"
            return Blinded(**_fields(criterion), ids=self._dates(criterion, scope))
        if modifier == "missing" and criterion.values[0] not in ("true", "false"):
            raise InvalidSearch(":missing takes true or false.")
        t = search_token.c
        branches = []
        for param, system in self._scopes(criterion.resource_type, index_param):
            # each branch a seek of (res_type, param, code): res_type repeated inside the OR
            restrict = (t.system == system,) if system is not None else ()
            match = self._match(criterion, f"{criterion.resource_type}.{param}")
            branches.append(
                and_(t.res_type == criterion.resource_type, t.param == param, *restrict, match)
            )
        ids = select(t.res_id).where(or_(*branches))
        if modifier == "missing":
            return Blinded(**_fields(criterion), ids=ids, negate=criterion.values[0] == "true")
        return Blinded(**_fields(criterion), ids=ids, negate=modifier == "not")

    def _scopes(self, resource_type: str, index_param: str) -> list[tuple[str, str | None]]:
        """(parameter, system in clear) whose rows answer `index_param`: its own, and those of
        the parameters that index its values in its place (`identifying.COVERED_BY`)."""
        scopes: list[tuple[str, str | None]] = [(index_param, None)]
        for other in COVERED_BY.get(index_param, ()):
            if self._indexed(resource_type, other):
                scopes.append((other, None))
        system = TELECOM_OF_SYSTEM.get(index_param)
        if system is not None and self._indexed(resource_type, TELECOM):
            scopes.append((TELECOM, system))
        return scopes

    def _indexed(self, resource_type: str, param: str) -> bool:
        """A blind parameter of that type (RelatedPerson has no `family`)."""
        defined = search_param(resource_type, param) is not None
        return defined and self._kind(resource_type, param) is not None

    def _match(self, criterion: Criterion, scope: str) -> Any:
        if criterion.modifier == "missing":
            return true()
        if criterion.param.type == "string":
            return or_(*(self._string(criterion, scope, v) for v in criterion.values))
        return or_(*(self._token(scope, criterion.modifier, v) for v in criterion.values))

    def _string(self, criterion: Criterion, scope: str, value: str) -> Any:
        term = search_token.c.code
        if criterion.modifier == "exact":
            return _code_in(self.blind.terms(scope, "x", unescape(value)))
        if criterion.modifier == "contains":
            raise InvalidSearch(
                f"{criterion.param.code}:contains is not available on "
                f"{criterion.resource_type}: {SEARCHED_AS_DIGESTS}. Search "
                f"`{criterion.param.code}=` with the beginning of the value instead.",
                issue_code="not-supported",
            )
        text = normalize(unescape(value))
        if not text:
            return term.isnot(None)
        whole = self.blind.terms(scope, "v", text)
        if criterion.param.code in PREFIXED and MIN_PREFIX <= len(text) <= MAX_PREFIX:
            # values starting with `text` and longer (`p`), or `text` itself (`v`)
            return _code_in(self.blind.terms(scope, "p", text) + whole)
        return _code_in(whole)

    def _token(self, scope: str, modifier: str | None, value: str) -> Any:
        t = search_token.c
        if modifier == "text":
            return _code_in(self.blind.terms(scope, "t", normalize(unescape(value))))
        parts = split_unescaped(value, "|")
        if modifier == "of-type":
            pieces = [unescape(p) for p in parts]
            if len(pieces) != 3 or not all(pieces):
                raise InvalidSearch(":of-type takes system|code|value.")
            code = f"{pieces[1]}|{pieces[2]}"[:MAX_INDEXED]
            return and_(t.system == pieces[0], _code_in(self.blind.terms(scope, "c", code)))
        if len(parts) == 1:
            return _code_in(self.blind.terms(scope, "c", unescape(parts[0])[:MAX_INDEXED]))
        system, code = unescape(parts[0]), unescape("|".join(parts[1:]))[:MAX_INDEXED]
        if not code:
            return t.system == system if system else false()
        term = _code_in(self.blind.terms(scope, "c", code))
        return and_(t.system.is_(None), term) if not system else and_(t.system == system, term)

    def _dates(self, criterion: Criterion, scope: str) -> Any:
        coarse: list[Any] = []
        terms: list[str] = []
        for value in criterion.values:
            prefix, text = split_prefix(value)
            period = parse_period(text)
            clause, matching = self._date(prefix, period.start, period.end)
            coarse.append(clause)
            terms += [term for t in matching for term in self.blind.terms(scope, "v", t)]
        d, b = search_date.c, search_token.c
        in_clear = select(d.res_id).where(
            d.res_type == criterion.resource_type, d.param == criterion.param.code, or_(*coarse)
        )
        if not terms:
            return in_clear
        digests = select(b.res_id).where(
            b.res_type == criterion.resource_type,
            b.param == criterion.param.code,
            b.code.in_(sorted(set(terms))),
        )
        return union(in_clear, digests)

    def _date(self, prefix: str, low: int, high: int) -> tuple[Any, list[str]]:
        """The condition on the years in clear, and the dates (texts) of the years a bound
        falls in that match."""
        margin = approximate_margin(low, high)
        edges = (low, high) if prefix != "ap" else (low - margin, low, high, high + margin)
        years = sorted({y for y in map(_year, edges) if y is not None})
        whole: list[int] = []
        matching: list[str] = []
        for year in years:
            hits = [
                t
                for t, s, e in _candidates(year)
                if period_matches(prefix, low, high, s, e, margin)
            ]
            if len(hits) == len(_candidates(year)):
                whole.append(year)
            else:
                matching += hits
        d = search_date.c
        starts = [_candidates(y)[0][1] for y in years]
        clause = and_(
            range_condition(prefix, low, high, d.start_us, d.end_us), d.start_us.notin_(starts)
        )
        if whole:
            clause = or_(clause, d.start_us.in_([_candidates(y)[0][1] for y in whole]))
        return clause, matching


def _code_in(terms: tuple[str, ...]) -> Any:
    """The row's term is one of `terms` (one per blind-index key in use: several only while
    `santinel keys rotate-blind-index` rebuilds the rows)."""
    code = search_token.c.code
    return code == terms[0] if len(terms) == 1 else code.in_(terms)


def _fields(criterion: Criterion) -> dict[str, Any]:
    return {
        "resource_type": criterion.resource_type,
        "param": criterion.param,
        "modifier": criterion.modifier,
        "values": criterion.values,
    }


def _year(micros: int) -> int | None:
    try:
        year = (EPOCH + timedelta(microseconds=micros)).year
    except OverflowError:
        return None
    return year if 1 <= year <= 9999 else None


@lru_cache(maxsize=256)
def _candidates(year: int) -> tuple[tuple[str, int, int], ...]:
    """Every date of `year` at year, month and day precision, with its period; the year first."""
    texts = [f"{year:04d}"]
    for month in range(1, 13):
        texts.append(f"{year:04d}-{month:02d}")
    first = parse_period(f"{year:04d}")
    day = EPOCH + timedelta(microseconds=first.start)
    while day.year == year:
        texts.append(day.strftime("%Y-%m-%d"))
        day += timedelta(days=1)
    found = []
    for text in texts:
        period = parse_period(text)
        found.append((text, period.start, period.end))
    return tuple(found)
