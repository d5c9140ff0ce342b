"""Exact decimals in `santinel.fhir.json`: which bodies take the Decimal parse, the same limits as
orjson's, literals written back as read, and everything downstream (search index extraction,
validation) working on Decimal values as on floats."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from santinel.errors import BadRequest
from santinel.fhir.json import JsonDecimal, dumps, loads, parse_object
from santinel.fhir.search.extract import extract
from santinel.fhir.search.values import CompositeValue, NumberValue, QuantityValue
from santinel.fhir.validation import parse_resource


@pytest.mark.parametrize(
    "literal",
    [
        "1.50",
        "100.00",
        "12345678901234567890.123",
        "66.899999999999991",
        "0.000010",
        "1e5",
        "494e0",
        "-1.000000000000000000E+245",
        "1E-22",
        "-0",
        "123456789012345678901234",
    ],
)
def test_a_number_a_float_would_change_is_kept_as_written(literal: str) -> None:
    body = f'{{"a": {literal}, "b": [1, {literal}]}}'.encode()
    value = loads(body)
    assert isinstance(value["a"], Decimal)
    assert value["a"] == Decimal(literal)
    assert dumps(value) == f'{{"a":{literal},"b":[1,{literal}]}}'.encode()
    assert literal.encode() in dumps(value, pretty=True)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1.5, "b": 100.0, "c": 0.1, "d": 70, "e": -3, "f": 0, "g": 18446744073709551615}',
        b'{"note": "ratio 1:1.50", "when": "2020-01-01T10:00:00.120Z", "n": [1.25, -0.0]}',
    ],
)
def test_numbers_a_float_reproduces_stay_on_the_fast_path(body: bytes) -> None:
    value = loads(body)
    assert value == orjson.loads(body)
    assert not any(isinstance(v, Decimal) for v in _numbers(value))
    assert dumps(value) == orjson.dumps(orjson.loads(body))


def _numbers(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, int | float | Decimal) else []


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1.50, "b": 1e400}',  # beyond a double: refused as before
        b'{"a": 1.50, "b": NaN}',
        b'{"a": 1.50, "b": "\xff"}',
        b'{"a": 1.50,}',
        b'{"a": 1.50, "b": "\\ud800"}',
        b'{"a": 1.50, "b": ' + b"[" * 1100 + b"]" * 1100 + b"}",
        b'{"a": 1.50, "b": ' + b"[" * 1020 + b"]" * 1020 + b"}",  # orjson's depth, not Python's
        b'{"a": 1.50, "b": ' + b"9" * 5000 + b"}",
    ],
)
def test_the_exact_parse_keeps_the_limits(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_object(body)


def test_duplicate_keys_keep_the_last_value_on_both_paths() -> None:
    assert loads(b'{"a": 1, "a": 2.50}') == {"a": Decimal("2.50")}
    assert loads(b'{"a": 1, "a": 2.5}') == {"a": 2.5}


def test_a_decimal_computed_here_is_written_by_its_digits() -> None:
    assert dumps({"a": Decimal("2.500") + JsonDecimal("1.50")}) == b'{"a":4.000}'
    with pytest.raises(TypeError):
        dumps({"a": Decimal("NaN")})


def test_precision_reaches_the_search_index() -> None:
    resource = parse_object(
        b'{"resourceType": "Observation", "status": "final", "code": {"text": "x"},'
        b' "valueQuantity": {"value": 1.50, "unit": "mg"}}'
    )
    [quantity] = [v for v in extract(resource) if v.param == "value-quantity"]
    assert isinstance(quantity, QuantityValue)
    assert (quantity.value, quantity.low, quantity.high) == (1.5, 1.495, 1.505)


def _exact(raw: bytes) -> Any:
    return json.loads(raw, parse_float=JsonDecimal)


def test_every_example_indexes_and_validates_the_same_with_exact_decimals(
    fhir_examples: Path,
) -> None:
    """With every number of every official example a Decimal, index extraction finds the same
    values (number/quantity bounds may only narrow to the literal's precision) and validation
    the same verdict."""
    compared = 0
    for path in sorted(fhir_examples.glob("*.json")):
        raw = path.read_bytes()
        if b"." not in raw or not raw.lstrip().startswith(b"{"):
            continue
        as_floats, as_decimals = orjson.loads(raw), _exact(raw)
        if not isinstance(as_floats.get("resourceType"), str):
            continue
        # Sets: `1.0` and `1.00` are one value as floats, two (of different precision) as decimals.
        expected = {_widened(v) for v in extract(as_floats)}
        found = {_widened(v) for v in extract(as_decimals)}
        assert found == expected, path.name
        compared += 1
    assert compared > 4_000
    for name in ("Observation-body-height.json", "Observation-decimal.json"):
        raw = (fhir_examples / name).read_bytes()
        assert parse_resource(dumps(_exact(raw))) == _exact(raw)


def _widened(value: Any) -> Any:
    """The value with its precision bounds dropped (a literal's precision may be finer than its
    float's shortest form)."""
    if isinstance(value, NumberValue | QuantityValue):
        return replace(value, low=0.0, high=0.0)
    if isinstance(value, CompositeValue):
        return replace(value, components=tuple(_widened(c) for c in value.components))
    return value
