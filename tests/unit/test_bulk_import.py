"""How imported resources and Bundle entries become `FhirRequest`s (no storage involved)."""

from __future__ import annotations

import orjson
import pytest

from santinel.errors import BadRequest
from santinel.services.bulk import entry_request

PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female"}


def test_an_entry_without_request_is_put_with_an_id_and_posted_without() -> None:
    with_id = entry_request({"resource": PATIENT}, {})
    assert (with_id.method, with_id.path) == ("PUT", ("Patient", "p1"))
    without = entry_request({"resource": {"resourceType": "Patient"}}, {})
    assert (without.method, without.path) == ("POST", ("Patient",))


def test_an_entry_request_carries_method_url_and_conditions() -> None:
    request = entry_request(
        {
            "resource": PATIENT,
            "request": {
                "method": "put",
                "url": "/Patient?identifier=urn:oid:1.2|42",
                "ifMatch": 'W/"3"',
            },
        },
        {},
    )
    assert request.method == "PUT"
    assert request.path == ("Patient",)
    assert request.params == (("identifier", "urn:oid:1.2|42"),)
    assert request.header("if-match") == 'W/"3"'
    delete = entry_request({"request": {"method": "DELETE", "url": "Patient/p%2E1"}}, {})
    assert (delete.method, delete.path, delete.body) == ("DELETE", ("Patient", "p.1"), b"")


def test_references_to_other_entries_are_rewritten() -> None:
    observation = {
        "resourceType": "Observation",
        "subject": {"reference": "urn:uuid:a"},
        "performer": [{"reference": "Practitioner/kept"}],
    }
    request = entry_request({"resource": observation}, {"urn:uuid:a": "Patient/p1"})
    body = orjson.loads(request.body)
    assert body["subject"] == {"reference": "Patient/p1"}
    assert body["performer"] == [{"reference": "Practitioner/kept"}]


def test_a_planned_create_becomes_an_update_as_create() -> None:
    entry = {
        "fullUrl": "urn:uuid:b",
        "resource": {"resourceType": "Patient"},
        "request": {"method": "POST", "url": "Patient"},
    }
    request = entry_request(entry, {}, planned_id="chosen")
    assert (request.method, request.path) == ("PUT", ("Patient", "chosen"))
    assert orjson.loads(request.body)["id"] == "chosen"


@pytest.mark.parametrize(
    "entry",
    [
        {"request": {"method": "GET", "url": "Patient/p1"}},
        {"request": {"method": "POST"}},
        {"resource": ["not", "an", "object"]},
        {},
    ],
)
def test_entries_that_cannot_be_imported_are_refused(entry: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        entry_request(entry, {})
