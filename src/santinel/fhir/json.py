"""JSON in and out with orjson (the hot path); parsing errors become clear client errors.

FHIR decimals keep their precision (R4 `datatypes.html#decimal`): `1.50` is not `1.5`, and
`12345678901234567890.123` is not a float. orjson parses numbers to floats, so a body is first
parsed by orjson (which also enforces the limits: valid UTF-8, no NaN or Infinity, no number
beyond a double's range, nesting depth at most 1024), then its number literals that a float
would not give back as written are looked for on the raw bytes; the few bodies holding one are
parsed again with `Decimal` numbers that remember their literal, written back as read (`494e0`
stays `494e0`; a Decimal computed here is written as `str()` gives it).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson

from santinel.errors import BadRequest

JsonObject = dict[str, Any]

# Number literals a float may not reproduce: with a fraction or exponent, integers beyond 64 bits
# (orjson makes them floats) and `-0`. Only in value position (after `:`, `[` or `,`); one inside
# a string (`"ratio 1:1.50"`) merely costs the exact parse.
AT_RISK = re.compile(
    rb"[:\[,]\s*(-?(?:\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d{19,}|0))(?=\s*[,\]}])"
)
INT_RANGE = range(-(2**63), 2**64)  # the integers orjson writes


def parse_object(body: bytes, what: str = "request body") -> JsonObject:
    """Parse `body` as one JSON object; malformed input is the client's mistake (400)."""
    if not body.strip():
        raise BadRequest(f"The {what} is empty; a JSON object was expected.", issue_code="required")
    value = loads(body, what)
    if not isinstance(value, dict):
        raise BadRequest(f"The {what} must be a JSON object.")
    return value


def loads(body: bytes, what: str = "request body") -> Any:
    """Any JSON value, its decimals exact (as `Decimal` when a float would change them)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The {what} is not valid JSON: {_reason(exc)}.") from None
    if not _needs_decimals(body, value):
        return value
    try:
        return json.loads(body, parse_float=JsonDecimal, parse_int=_integer)
    except (RecursionError, ValueError):
        # Nesting orjson accepts but Python's parser does not, or a 4,300-digit integer.
        raise BadRequest(f"The {what} nests too deeply or holds a number too long.") from None


class JsonDecimal(Decimal):
    """A Decimal read from JSON, with the literal it was read from (its precision and form)."""

    literal: str

    def __new__(cls, literal: str) -> JsonDecimal:
        number = super().__new__(cls, literal)
        number.literal = literal
        return number


def _needs_decimals(body: bytes, value: Any) -> bool:
    try:
        if orjson.dumps(value) == body:
            # Written back byte for byte: every number is as it was (the case of the bodies this
            # server stored, compact and float-exact, read again on every search and read).
            return False
    except TypeError:
        pass  # deeper than orjson writes (254 levels): the scan below decides
    for match in AT_RISK.finditer(body):
        literal = match[1]
        if literal == b"0":
            continue  # the `0` alternative is there to catch `-0` only
        if orjson.dumps(orjson.loads(literal)) != literal:
            return True
    return False


def _integer(literal: str) -> int | JsonDecimal:
    value = int(literal)
    # `-0` is a valid FHIR integer and decimal; only a Decimal keeps its sign.
    return value if value in INT_RANGE and literal != "-0" else JsonDecimal(literal)


def _reason(exc: orjson.JSONDecodeError) -> str:
    # orjson messages name the problem and position only (no input echoed back).
    return str(exc).split(": line", 1)[0] + f" at line {exc.lineno}, column {exc.colno}"


def _decimal(value: Any) -> orjson.Fragment:
    if isinstance(value, JsonDecimal):
        return orjson.Fragment(value.literal)  # it matched the JSON number grammar: safe as is
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot serialize {type(value).__name__}")


def dumps(value: Any, *, pretty: bool = False) -> bytes:
    return orjson.dumps(value, default=_decimal, option=orjson.OPT_INDENT_2 if pretty else 0)
