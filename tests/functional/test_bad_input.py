"""Hostile and broken input over real HTTP, on SQLite and PostgreSQL.

Every refusal is a 4xx (never a 500) carrying an OperationOutcome whose issues have a code, a
diagnostic and, when an element is at fault, its `expression`; nothing is stored; and nothing
about the implementation (stack traces, SQL, drivers, file paths, library names or versions)
leaks into the answer.

The broken resources live in `tests/data/invalid/`, one file per scenario. A file named
`<type>_<scenario>.json` is sent to `/<Type>`; every other file is sent to `/Patient`.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

INVALID = Path(__file__).resolve().parents[1] / "data" / "invalid"
TYPE_PREFIXES = {"patient_": "Patient", "observation_": "Observation", "bundle_": "Bundle"}

# For each file, the expression that must name the element at fault; None when the body is not a
# JSON resource at all (nothing inside it can be pointed at).
EXPECTED: dict[str, str | None] = {
    # Not JSON, or not one JSON object
    "empty_body.json": None,
    "whitespace_only_body.json": None,
    "invalid_utf8.json": None,
    "latin1_encoded.json": None,
    "json_byte_order_mark.json": None,
    "json_comment.json": None,
    "json_lone_surrogate_escape.json": None,
    "json_nan.json": None,
    "json_single_quotes.json": None,
    "json_trailing_comma.json": None,
    "json_truncated.json": None,
    "json_two_documents.json": None,
    "json_unescaped_control_character.json": None,
    "json_unterminated_string.json": None,
    "json_array_of_resources.json": None,
    "json_null.json": None,
    "json_number.json": None,
    "json_string.json": None,
    "deep_nesting_10000.json": None,
    "deep_object_nesting_10000.json": None,
    "number_huge_exponent.json": None,
    # The resource type
    "no_resource_type.json": "resourceType",
    "resource_type_not_string.json": "resourceType",
    "resource_type_unknown.json": "resourceType",
    "resource_type_lowercase.json": "resourceType",
    "resource_type_mismatch_url.json": "resourceType",
    "json_duplicate_resource_type.json": "resourceType",
    # Structure, cardinality, primitive formats, choice types
    "json_duplicate_keys.json": "Patient.gender",
    "patient_unknown_element.json": "Patient.favouriteColour",
    "patient_active_string.json": "Patient.active",
    "patient_active_null.json": "Patient.active",
    "patient_birthdate_month_13.json": "Patient.birthDate",
    "patient_birthdate_number.json": "Patient.birthDate",
    "patient_birthdate_with_time.json": "Patient.birthDate",
    "patient_name_object_not_array.json": "Patient.name",
    "patient_name_empty_array.json": "Patient.name",
    "patient_name_array_of_arrays.json": "Patient.name[0]",
    "patient_name_null_item.json": "Patient.name[0]",
    "patient_family_empty_string.json": "Patient.name[0].family",
    "patient_marital_status_empty_object.json": "Patient.maritalStatus",
    "patient_code_leading_space.json": "Patient.maritalStatus.coding[0].code",
    "patient_code_double_space.json": "Patient.maritalStatus.coding[0].code",
    "patient_uri_with_space.json": "Patient.identifier[0].system",
    "patient_deceased_two_choices.json": "Patient.deceased",
    "patient_primitive_extension_not_object.json": "Patient._birthDate",
    "patient_meta_last_updated_not_instant.json": "Patient.meta.lastUpdated",
    "patient_multiple_birth_integer_out_of_range.json": "Patient.multipleBirthInteger",
    "patient_multiple_birth_integer_huge.json": "Patient.multipleBirthInteger",
    "patient_multiple_birth_integer_fraction.json": "Patient.multipleBirthInteger",
    "observation_missing_status.json": "Observation.status",
    "observation_missing_code.json": "Observation.code",
    "observation_two_value_choices.json": "Observation.value",
    "observation_unknown_value_type.json": "Observation.valueWeight",
    "observation_value_quantity_value_string.json": "Observation.valueQuantity.value",
    "observation_value_integer_out_of_range.json": "Observation.valueInteger",
    "observation_effective_offset_out_of_range.json": "Observation.effectiveDateTime",
    "observation_effective_time_without_offset.json": "Observation.effectiveDateTime",
    "observation_effective_hour_25.json": "Observation.effectiveDateTime",
    "observation_issued_without_seconds.json": "Observation.issued",
    "bundle_entry_with_invalid_resource.json": "Bundle.entry[0].resource.birthDate",
    # Dates against the calendar (the R4 regex allows a day 31 in any month)
    "patient_birthdate_february_30.json": "Patient.birthDate",
    "patient_extension_value_date_april_31.json": "Patient.extension[0].valueDate",
    "observation_effective_february_29_not_leap_year.json": "Observation.effectiveDateTime",
    "observation_issued_february_29_1900.json": "Observation.issued",
    # Codes outside the value set of a required binding (resources and datatypes)
    "patient_gender_not_in_value_set.json": "Patient.gender",
    "observation_status_not_in_value_set.json": "Observation.status",
    "patient_telecom_system_unknown_code.json": "Patient.telecom[0].system",
    "patient_narrative_status_unknown_code.json": "Patient.text.status",
    "patient_name_use_unknown_code.json": "Patient.name[0].use",
    "observation_value_quantity_comparator_unknown.json": "Observation.valueQuantity.comparator",
    "bundle_entry_with_code_outside_value_set.json": "Bundle.entry[0].resource.gender",
    # Ids
    "patient_id_bad_characters.json": "Patient.id",
    "patient_id_too_long.json": "Patient.id",
    "patient_id_number.json": "Patient.id",
    "patient_id_empty.json": "Patient.id",
    # Extensions (ext-1) and contained resources (dom-2 to dom-5)
    "patient_extension_without_url.json": "Patient.extension[0].url",
    "patient_extension_value_and_extensions.json": "Patient.extension[0]",
    "patient_extension_neither_value_nor_extensions.json": "Patient.extension[0]",
    "patient_contained_without_id.json": "Patient.contained[0]",
    "patient_contained_not_referenced.json": "Patient.contained[0]",
    "patient_contained_nested_contained.json": "Patient.contained[0]",
    "patient_contained_with_version_id.json": "Patient.contained[0]",
    "patient_contained_with_security_label.json": "Patient.contained[0]",
    "patient_contained_unknown_type.json": "Patient.contained[0]",
    # References
    "patient_reference_bad_syntax.json": "Patient.managingOrganization.reference",
    "patient_reference_unknown_type.json": "Patient.managingOrganization.reference",
    "patient_reference_javascript.json": "Patient.managingOrganization.reference",
    "patient_reference_conditional_outside_transaction.json": (
        "Patient.managingOrganization.reference"
    ),
    # Narrative: safe XHTML only (txt-1, txt-2)
    "patient_narrative_script.json": "Patient.text.div",
    "patient_narrative_javascript_href.json": "Patient.text.div",
    "patient_narrative_javascript_href_entity_encoded.json": "Patient.text.div",
    "patient_narrative_onload_attribute.json": "Patient.text.div",
    "patient_narrative_onclick_uppercase.json": "Patient.text.div",
    "patient_narrative_doctype_entity.json": "Patient.text.div",
    "patient_narrative_processing_instruction.json": "Patient.text.div",
    "patient_narrative_iframe.json": "Patient.text.div",
    "patient_narrative_style_element.json": "Patient.text.div",
    "patient_narrative_data_html_image.json": "Patient.text.div",
    "patient_narrative_missing_xmlns.json": "Patient.text.div",
    "patient_narrative_root_not_div.json": "Patient.text.div",
    "patient_narrative_two_roots.json": "Patient.text.div",
    "patient_narrative_whitespace_only.json": "Patient.text.div",
}

# Invalid per the specification but accepted today: each is a strict xfail, so the day the gap
# closes the test says so and the file moves to EXPECTED.
KNOWN_GAPS: dict[str, str] = {}

# R4 `valueset-issue-type`
ISSUE_TYPES = frozenset(
    [
        "invalid",
        "structure",
        "required",
        "value",
        "invariant",
        "security",
        "login",
        "unknown",
        "expired",
        "forbidden",
        "suppressed",
        "processing",
        "not-supported",
        "duplicate",
        "multiple-matches",
        "not-found",
        "deleted",
        "too-long",
        "code-invalid",
        "extension",
        "too-costly",
        "business-rule",
        "conflict",
        "transient",
        "lock-error",
        "no-store",
        "exception",
        "timeout",
        "incomplete",
        "throttled",
        "informational",
    ]
)
LEAK_MARKERS = (
    "traceback",
    'file "',
    "sqlalchemy",
    "sqlite",
    "asyncpg",
    "psycopg",
    "postgres",
    "select ",
    "insert into",
    "/work/",
    "/tmp/",  # noqa: S108 (a marker searched for, not a file used)
    "/usr/",
    "site-packages",
    ".py",
    "python",
    "uvicorn",
    "starlette",
    "pydantic",
    "orjson",
    "fhirkit",
)
VERSION_NUMBER = re.compile(r"\b\d+\.\d+\.\d+\b")


def assert_no_leak(response: httpx.Response) -> None:
    """Nothing in the answer tells how the server is built."""
    text = response.text.lower()
    headers = " ".join(f"{k}: {v}" for k, v in response.headers.items()).lower()
    for marker in LEAK_MARKERS:
        assert marker not in text, f"{marker!r} in {response.text[:300]}"
        assert marker not in headers, f"{marker!r} in headers {headers}"
    assert not VERSION_NUMBER.search(response.text), response.text[:300]
    assert "server" not in response.headers
    assert "x-powered-by" not in response.headers


def assert_refused(
    response: httpx.Response, statuses: tuple[int, ...], expression: str | None = None
) -> dict[str, Any]:
    """A refusal with one of `statuses`, as an OperationOutcome; `expression` names the fault."""
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome: dict[str, Any] = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issues = outcome["issue"]
    assert issues
    assert any(i["severity"] in ("error", "fatal") for i in issues)
    for issue in issues:
        assert issue["code"] in ISSUE_TYPES, issue
        assert issue["diagnostics"].strip(), issue
    if expression is not None:
        named = [e for i in issues for e in i.get("expression", [])]
        assert any(expression in e for e in named), (expression, named)
    assert_no_leak(response)
    return outcome


def target_type(name: str) -> str:
    return next((t for prefix, t in TYPE_PREFIXES.items() if name.startswith(prefix)), "Patient")


def newest_versions(client: httpx.Client, rtype: str) -> list[dict[str, Any]]:
    """The newest entry of the type's history: unchanged when nothing was written."""
    history = client.get(f"/{rtype}/_history", params={"_count": 1})
    assert history.status_code == 200
    entries: list[dict[str, Any]] = history.json()["entry"]
    return entries


CORPUS = [
    *[pytest.param(name, id=name.removesuffix(".json")) for name in sorted(EXPECTED)],
    *[
        pytest.param(
            name,
            id=name.removesuffix(".json"),
            marks=pytest.mark.xfail(reason=reason, strict=True),
        )
        for name, reason in sorted(KNOWN_GAPS.items())
    ],
]


def test_every_file_of_the_invalid_corpus_has_an_expectation() -> None:
    files = {p.name for p in INVALID.glob("*.json")}
    assert files == set(EXPECTED) | set(KNOWN_GAPS)
    assert not set(EXPECTED) & set(KNOWN_GAPS)
    assert len(EXPECTED) >= 50


@pytest.mark.parametrize("name", CORPUS)
def test_a_broken_resource_is_refused_by_create_and_update_and_nothing_is_stored(
    client: httpx.Client, name: str
) -> None:
    raw = (INVALID / name).read_bytes()
    rtype = target_type(name)
    expression = EXPECTED.get(name)
    before = newest_versions(client, rtype)

    created = client.post(f"/{rtype}", content=raw)
    assert_refused(created, (400, 422), expression)
    assert "location" not in created.headers

    rid = f"bad-{uuid.uuid4().hex[:16]}"
    updated = client.put(f"/{rtype}/{rid}", content=raw)
    assert_refused(updated, (400, 422), expression)

    assert client.get(f"/{rtype}/{rid}").status_code == 404
    assert newest_versions(client, rtype) == before


def test_a_body_over_the_size_limit_is_refused_with_413(client: httpx.Client) -> None:
    limit = 1024 * 1024  # the test server's max_body_bytes (tests/conftest.py)
    family = "x" * limit
    body = b'{"resourceType": "Patient", "name": [{"family": "' + family.encode() + b'"}]}'
    before = newest_versions(client, "Patient")
    assert_refused(client.post("/Patient", content=body), (413,))
    rid = f"big-{uuid.uuid4().hex[:12]}"
    assert_refused(client.put(f"/Patient/{rid}", content=body), (413,))

    def chunks() -> Any:  # no Content-Length: the limit holds while streaming
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    assert_refused(client.post("/Patient", content=chunks()), (413,))
    assert client.get(f"/Patient/{rid}").status_code == 404
    assert newest_versions(client, "Patient") == before


def test_a_body_just_under_the_size_limit_is_accepted(client: httpx.Client) -> None:
    padding = "x" * (1024 * 1024 - 200)
    body = {"resourceType": "Patient", "name": [{"family": padding}]}
    assert client.post("/Patient", json=body).status_code == 201


@pytest.mark.parametrize(
    "content_type",
    ["application/xml", "text/plain", "application/fhir+xml", "application/x-www-form-urlencoded"],
)
def test_a_body_that_is_not_declared_json_is_refused_with_415(
    client: httpx.Client, content_type: str
) -> None:
    rid = f"ct-{uuid.uuid4().hex[:12]}"
    body = b'{"resourceType": "Patient", "id": "' + rid.encode() + b'"}'
    headers = {"Content-Type": content_type}
    assert_refused(client.post("/Patient", content=body, headers=headers), (415,))
    assert_refused(client.put(f"/Patient/{rid}", content=body, headers=headers), (415,))
    assert client.get(f"/Patient/{rid}").status_code == 404


def test_a_body_without_content_type_is_refused_with_415(client: httpx.Client) -> None:
    rid = f"ct-{uuid.uuid4().hex[:12]}"
    request = client.build_request(
        "PUT",
        f"/Patient/{rid}",
        content=b'{"resourceType": "Patient", "id": "' + rid.encode() + b'"}',
    )
    del request.headers["content-type"]
    assert_refused(client.send(request), (415,))
    assert client.get(f"/Patient/{rid}").status_code == 404


@pytest.mark.parametrize(
    ("accept", "params"),
    [
        ("application/fhir+xml", {}),
        ("application/xml", {}),
        ("text/html", {}),
        ("application/fhir+json", {"_format": "xml"}),
        ("application/fhir+json", {"_format": "application/fhir+xml"}),
        ("application/fhir+json", {"_format": "ttl"}),
    ],
)
def test_xml_and_other_formats_are_refused_with_406_in_json(
    client: httpx.Client, accept: str, params: dict[str, str]
) -> None:
    rid = client.post("/Patient", json={"resourceType": "Patient"}).json()["id"]
    for url in (f"/Patient/{rid}", "/metadata", "/Patient/_history"):
        response = client.get(url, params=params, headers={"Accept": accept})
        assert_refused(response, (406,))


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/Foo/1"),
        ("GET", "/Foo"),
        ("POST", "/Foo"),
        ("PUT", "/Foo/1"),
        ("DELETE", "/Foo/1"),
        ("GET", "/Foo/_history"),
        ("GET", "/patient/1"),
        ("GET", "/Patient/1/_history/1/extra"),
    ],
)
def test_an_unknown_resource_type_or_path_in_the_url_is_404(
    client: httpx.Client, method: str, url: str
) -> None:
    body = b'{"resourceType": "Patient", "id": "1"}' if method in ("POST", "PUT") else None
    assert_refused(client.request(method, url, content=body), (404,))


def test_an_id_in_the_body_that_differs_from_the_url_is_400(client: httpx.Client) -> None:
    rid = f"url-{uuid.uuid4().hex[:12]}"
    body = {"resourceType": "Patient", "id": f"body-{uuid.uuid4().hex[:12]}"}
    assert_refused(client.put(f"/Patient/{rid}", json=body), (400,), "Patient.id")
    assert client.get(f"/Patient/{rid}").status_code == 404
    assert client.get(f"/Patient/{body['id']}").status_code == 404


def test_an_update_without_id_in_the_body_is_400(client: httpx.Client) -> None:
    rid = f"noid-{uuid.uuid4().hex[:12]}"
    assert_refused(
        client.put(f"/Patient/{rid}", json={"resourceType": "Patient"}), (400,), "Patient.id"
    )
    assert client.get(f"/Patient/{rid}").status_code == 404


@pytest.mark.parametrize(
    "bad_id",
    [
        "bad!id",
        "a" * 65,
        "%20x",  # an id with a space
        "x%2Fy",  # an encoded slash is part of the id, not a path separator
        "%2570%31",  # decoded once this is '%701', not 'p1'
        "caf%C3%A9",
    ],
)
def test_an_invalid_id_in_the_url_is_400(client: httpx.Client, bad_id: str) -> None:
    body = b'{"resourceType": "Patient", "id": "p1"}'
    for method, url in (
        ("GET", f"/Patient/{bad_id}"),
        ("PUT", f"/Patient/{bad_id}"),
        ("DELETE", f"/Patient/{bad_id}"),
        ("GET", f"/Patient/{bad_id}/_history"),
        ("GET", f"/Patient/{bad_id}/_history/1"),
    ):
        response = client.request(method, url, content=body if method == "PUT" else None)
        assert_refused(response, (400,))


def test_percent_encoding_in_the_path_is_decoded_exactly_once(client: httpx.Client) -> None:
    rid = f"p{uuid.uuid4().hex[:12]}"
    client.put(f"/Patient/{rid}", json={"resourceType": "Patient", "id": rid})
    assert client.get(f"/Patient/%{ord(rid[0]):02X}{rid[1:]}").status_code == 200
    assert_refused(client.get(f"/Patient/%25{ord(rid[0]):02X}{rid[1:]}"), (400,))
    assert_refused(client.get(f"/Patient/{rid}%2F_history"), (400,))


@pytest.mark.parametrize("if_match", ["nonsense", 'W/"abc"', 'W/"-1"', 'W/""', 'W/"\xb2"'])
def test_a_malformed_if_match_is_400(client: httpx.Client, if_match: str) -> None:
    rid = f"im-{uuid.uuid4().hex[:12]}"
    body = {"resourceType": "Patient", "id": rid}
    assert client.put(f"/Patient/{rid}", json=body).status_code == 201
    headers = {"If-Match": if_match.encode("latin-1")}
    assert_refused(client.put(f"/Patient/{rid}", json=body, headers=headers), (400,))
    assert_refused(client.delete(f"/Patient/{rid}", headers=headers), (400,))
    assert client.get(f"/Patient/{rid}").json()["meta"]["versionId"] == "1"


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/Patient/{rid}/_history/99999999999999999999999", 404),
        ("/Patient/{rid}/_history/2147483648", 404),
        ("/Patient/{rid}/_history/%C2%B2", 404),  # '²' is a digit to str.isdigit
        ("/Patient/{rid}/_history?_page=b99999999999999999999999", 400),
        ("/_history?_page=a%D9%A3", 400),  # Arabic-Indic three
        ("/Patient/_history?_count=%C2%B2", 400),
        ("/Patient/_history?_count=-1", 400),
        ("/Patient/_history?_since=2020-13", 400),
        ("/Patient/_history?_since=garbage", 400),
        ("/Patient/{rid}?_summary=bogus", 400),
    ],
)
def test_out_of_range_numbers_and_bad_parameters_are_client_errors(
    client: httpx.Client, url: str, status: int
) -> None:
    rid = f"n-{uuid.uuid4().hex[:12]}"
    client.put(f"/Patient/{rid}", json={"resourceType": "Patient", "id": rid})
    assert_refused(client.get(url.format(rid=rid)), (status,))


def test_a_date_at_the_end_of_the_calendar_is_a_client_error(client: httpx.Client) -> None:
    response = client.get("/Patient/_history", params={"_since": "9999-12-31T23:59:59Z"})
    assert response.status_code in (200, 400), response.text
