"""FHIR decimals keep their precision over HTTP (R4 `datatypes.html#decimal`), on SQLite and
PostgreSQL: `1.50` is stored and served as `1.50`, `100.0` as `100.0`, a value beyond a float's
digits exactly, whichever interaction writes or reads the resource; and number/quantity search
still matches with the search value's precision (R4 `search.html#number`)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

# Each literal as sent must come back as written.
LITERALS = ("1.50", "100.0", "12345678901234567890.123", "0.000010", "66.899999999999991", "-0.0")


def literal_json(text: str | bytes) -> Any:
    """The JSON with every non-integer number kept as its literal text."""
    return json.loads(text, parse_float=lambda literal: ("decimal", literal))


def with_literals(value: Any, literals: dict[str, str]) -> str:
    """`value` as JSON, each string `"@name"` replaced by the number literal `literals[name]`
    (json.dumps would reformat a number: 1.50 as 1.5)."""
    text = json.dumps(value)
    for name, literal in literals.items():
        text = text.replace(f'"@{name}"', literal)
    return text


def observation(code: str, rid: str | None = None) -> dict[str, Any]:
    quantity = {"system": "http://unitsofmeasure.org", "code": "mmol/L", "unit": "mmol/L"}
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://example.org/decimals", "code": code}]},
        "valueQuantity": {"value": "@main", **quantity},
        "component": [
            {"code": {"text": f"c{i}"}, "valueQuantity": {"value": f"@c{i}", "unit": "mg"}}
            for i in range(len(LITERALS))
        ],
    }
    if rid is not None:
        resource["id"] = rid
    return resource


NUMBERS = {"main": "1.50", **{f"c{i}": literal for i, literal in enumerate(LITERALS)}}


def observation_body(code: str, rid: str | None = None) -> str:
    return with_literals(observation(code, rid), NUMBERS)


def assert_literals_kept(served: Any) -> None:
    assert served["valueQuantity"]["value"] == ("decimal", "1.50")
    assert [c["valueQuantity"]["value"] for c in served["component"]] == [
        ("decimal", literal) for literal in LITERALS
    ]


def create(client: httpx.Client) -> tuple[str, str]:
    code = uuid.uuid4().hex
    response = client.post("/Observation", content=observation_body(code))
    assert response.status_code == 201, response.text
    assert_literals_kept(literal_json(response.content))
    return code, literal_json(response.content)["id"]


def test_create_read_vread_search_and_history_keep_every_digit(client: httpx.Client) -> None:
    code, rid = create(client)
    assert_literals_kept(literal_json(client.get(f"/Observation/{rid}").content))
    assert_literals_kept(literal_json(client.get(f"/Observation/{rid}/_history/1").content))
    pretty = client.get(f"/Observation/{rid}", params={"_pretty": "true"})
    assert b"\n  " in pretty.content
    assert_literals_kept(literal_json(pretty.content))
    found = client.get("/Observation", params={"code": f"http://example.org/decimals|{code}"})
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [rid]
    assert_literals_kept(literal_json(found.content)["entry"][0]["resource"])
    history = literal_json(client.get(f"/Observation/{rid}/_history").content)
    assert_literals_kept(history["entry"][0]["resource"])


def test_update_and_patch_keep_every_digit(client: httpx.Client) -> None:
    rid = f"dec-{uuid.uuid4().hex[:12]}"
    put = client.put(f"/Observation/{rid}", content=observation_body("u", rid))
    assert put.status_code == 201, put.text
    operations = '[{"op": "replace", "path": "/status", "value": "amended"}, ' + (
        '{"op": "add", "path": "/valueQuantity/value", "value": 2.500}]'
    )
    patched = client.patch(
        f"/Observation/{rid}",
        content=operations,
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    served = literal_json(client.get(f"/Observation/{rid}").content)
    assert served["status"] == "amended"
    assert served["valueQuantity"]["value"] == ("decimal", "2.500")
    assert [c["valueQuantity"]["value"] for c in served["component"]] == [
        ("decimal", literal) for literal in LITERALS
    ]


def test_a_transaction_keeps_every_digit(client: httpx.Client) -> None:
    code = uuid.uuid4().hex
    entry = {
        "fullUrl": f"urn:uuid:{uuid.uuid4()}",
        "resource": observation(code),
        "request": {"method": "POST", "url": "Observation"},
    }
    bundle = with_literals(
        {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}, NUMBERS
    )
    response = client.post("/", content=bundle)
    assert response.status_code == 200, response.text
    location = response.json()["entry"][0]["response"]["location"]
    rid = location.split("/")[1]
    assert_literals_kept(literal_json(client.get(f"/Observation/{rid}").content))


def test_quantity_search_uses_the_precision_of_the_search_value(client: httpx.Client) -> None:
    code, rid = create(client)

    def ids(value: str) -> list[str]:
        params = {"code": f"http://example.org/decimals|{code}", "value-quantity": value}
        response = client.get("/Observation", params=params)
        assert response.status_code == 200, response.text
        return [e["resource"]["id"] for e in response.json().get("entry", [])]

    assert ids("1.50") == [rid]
    assert ids("1.5") == [rid]
    assert ids("1.50|http://unitsofmeasure.org|mmol/L") == [rid]
    assert ids("1.51") == []
    assert ids("1.495") == []  # [1.4945, 1.4955) does not hold 1.50
    assert ids("gt1.49") == [rid]
    assert ids("lt1.50") == []


def test_an_eq_search_with_more_digits_than_a_double_holds_finds_its_value(
    client: httpx.Client,
) -> None:
    """The index holds doubles: a value written with more digits than a double holds is found by
    that same literal (the range would otherwise collapse to nothing), not by a distant one."""
    code = uuid.uuid4().hex
    numbers = {**NUMBERS, "main": "12345678901234567890.123"}
    response = client.post("/Observation", content=with_literals(observation(code), numbers))
    assert response.status_code == 201, response.text
    rid = response.json()["id"]

    def ids(value: str) -> list[str]:
        params = {"code": f"http://example.org/decimals|{code}", "value-quantity": value}
        found = client.get("/Observation", params=params)
        assert found.status_code == 200, found.text
        return [e["resource"]["id"] for e in found.json().get("entry", [])]

    assert ids("12345678901234567890.123") == [rid]
    assert ids("ne12345678901234567890.123") == []
    assert ids("12345678901234600000") == []
