"""JSON in and out with orjson (the hot path); parsing errors become clear client errors."""

from __future__ import annotations

from typing import Any

import orjson

from santinel.errors import BadRequest

JsonObject = dict[str, Any]


def parse_object(body: bytes, what: str = "request body") -> JsonObject:
    """Parse `body` as one JSON object; malformed input is the client's mistake (400)."""
    if not body.strip():
        raise BadRequest(f"The {what} is empty; a JSON object was expected.", issue_code="required")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The {what} is not valid JSON: {_reason(exc)}.") from None
    if not isinstance(value, dict):
        raise BadRequest(f"The {what} must be a JSON object.")
    return value


def _reason(exc: orjson.JSONDecodeError) -> str:
    # orjson messages name the problem and position only (no input echoed back).
    return str(exc).split(": line", 1)[0] + f" at line {exc.lineno}, column {exc.colno}"


def dumps(value: Any, *, pretty: bool = False) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 if pretty else 0)
