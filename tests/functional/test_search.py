"""FHIR search over real HTTP on SQLite and PostgreSQL (R4 `search.html`)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest


def name(marker: str) -> str:
    return f"Lefèvre{marker}"


def tag() -> str:
    """A unique marker so each test sees only its own resources in a shared database."""
    return uuid.uuid4().hex[:12]


def put(client: httpx.Client, resource: dict[str, Any]) -> dict[str, Any]:
    response = client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode") == mode
    ]


def search(client: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "Bundle"
    assert body["type"] == "searchset"
    return body


@pytest.fixture
def family(client: httpx.Client) -> str:
    """Three patients (ids f<marker>-a/b/c) sharing the family name Lefèvre<marker>."""
    marker = tag()
    name = f"Lefèvre{marker}"
    put(
        client,
        {
            "resourceType": "Patient",
            "id": f"f{marker}-a",
            "name": [{"family": name, "given": ["Élodie"]}],
            "gender": "female",
            "birthDate": "1974-12-25",
            "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": f"{marker}-nir"}],
        },
    )
    put(
        client,
        {
            "resourceType": "Patient",
            "id": f"f{marker}-b",
            "name": [{"family": name, "given": ["Marc"]}],
            "gender": "male",
            "birthDate": "1980-05",
        },
    )
    put(
        client,
        {
            "resourceType": "Patient",
            "id": f"f{marker}-c",
            "name": [{"family": name + "x", "given": ["Zoé"]}],
            "gender": "female",
            "birthDate": "2001-01-01",
            "active": False,
        },
    )
    return marker


def test_string_is_starts_with_and_accent_and_case_insensitive(
    client: httpx.Client, family: str
) -> None:
    plain = name(family).replace("è", "e").lower()
    assert sorted(ids(search(client, "/Patient", family=plain))) == [
        f"f{family}-a",
        f"f{family}-b",
        f"f{family}-c",
    ]
    assert ids(search(client, "/Patient", given="elo", family=name(family))) == [f"f{family}-a"]


def test_string_exact_and_contains(client: httpx.Client, family: str) -> None:
    assert sorted(ids(search(client, "/Patient", **{"family:exact": name(family)}))) == [
        f"f{family}-a",
        f"f{family}-b",
    ]
    assert ids(search(client, "/Patient", **{"family:exact": name(family).lower()})) == []
    # Patient names are blind indexes (keyed digests): `:contains` cannot be answered and is
    # refused, clearly (tests/functional/test_encryption.py: with plaintext_name_indexes).
    middle = name(family)[3:9]
    refused = client.get("/Patient", params={"family:contains": middle})
    assert refused.status_code == 400
    issue = refused.json()["issue"][0]
    assert issue["code"] == "not-supported"
    assert "blind indexes" in issue["diagnostics"]


def test_token_forms(client: httpx.Client, family: str) -> None:
    nir = f"{family}-nir"
    assert ids(search(client, "/Patient", identifier=f"urn:oid:1.2.250.1.213.1.4.8|{nir}")) == [
        f"f{family}-a"
    ]
    assert ids(search(client, "/Patient", identifier=nir)) == [f"f{family}-a"]
    assert ids(search(client, "/Patient", identifier=f"urn:other|{nir}")) == []
    assert ids(search(client, "/Patient", identifier=f"|{nir}")) == []
    females = search(client, "/Patient", family=name(family), gender="female")
    assert sorted(ids(females)) == [f"f{family}-a", f"f{family}-c"]
    not_female = search(client, "/Patient", family=name(family), **{"gender:not": "female"})
    assert ids(not_female) == [f"f{family}-b"]


def test_or_with_commas_and_and_by_repetition(client: httpx.Client, family: str) -> None:
    either = search(client, "/Patient", family=name(family), given="marc,zoe")
    assert sorted(ids(either)) == [f"f{family}-b", f"f{family}-c"]
    both = client.get(
        "/Patient", params=[("family", family), ("given", "marc"), ("given", "elodie")]
    ).json()
    assert ids(both) == []


def test_date_precision_and_prefixes(client: httpx.Client, family: str) -> None:
    def found(value: str) -> list[str]:
        return sorted(
            i[-1] for i in ids(search(client, "/Patient", family=name(family), birthdate=value))
        )

    assert found("1974") == ["a"]
    assert found("1974-12-25") == ["a"]
    assert found("1980-05") == ["b"]
    assert found("1980-05-10") == []  # a month is not within one day
    assert found("ge1980-01-01") == ["b", "c"]
    assert found("lt1980") == ["a"]
    assert found("sa1975") == ["b", "c"]
    assert found("eb1980-05-01") == ["a"]
    assert found("ne1974") == ["b", "c"]
    assert found("2001-01-01") == ["c"]


def test_datetime_time_zones(client: httpx.Client) -> None:
    t = tag()
    put(
        client,
        {
            "resourceType": "Observation",
            "id": f"tz{t}",
            "status": "final",
            "code": {"text": f"tz{t}"},
            "effectiveDateTime": "2024-03-01T00:30:00+02:00",
        },
    )  # 2024-02-29T22:30Z

    def found(value: str) -> bool:
        return f"tz{t}" in ids(
            search(client, "/Observation", **{"code:text": f"tz{t}", "date": value})
        )

    assert found("2024-02-29T22:30:00Z")
    assert found("2024-02-29T23:00:00+00:30")
    assert found("2024-02")  # the instant lies within February in UTC
    assert not found("2024-03-01T00:00:00Z")
    assert found("gt2024-02-29T22:00:00Z")
    assert not found("gt2024-02-29T23:00:00Z")


def test_missing_modifier(client: httpx.Client, family: str) -> None:
    assert sorted(
        ids(search(client, "/Patient", family=name(family), **{"active:missing": "true"}))
    ) == [
        f"f{family}-a",
        f"f{family}-b",
    ]
    assert ids(search(client, "/Patient", family=name(family), **{"active:missing": "false"})) == [
        f"f{family}-c"
    ]


def test_sort_count_paging_and_total(client: httpx.Client, family: str) -> None:
    first = search(client, "/Patient", family=name(family), _sort="-birthdate", _count=2)
    assert first["total"] == 3
    assert ids(first) == [f"f{family}-c", f"f{family}-b"]
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert next_url.startswith("http")
    # a concurrent write does not shift the pages of a search already started
    put(
        client,
        {
            "resourceType": "Patient",
            "id": f"f{family}-d",
            "name": [{"family": name(family)}],
            "birthDate": "2020",
        },
    )
    second = client.get(next_url).json()
    assert ids(second) == [f"f{family}-a"]
    assert any(link["relation"] == "previous" for link in second["link"])
    ascending = search(client, "/Patient", family=name(family), _sort="birthdate,_id")
    assert ids(ascending)[0] == f"f{family}-a"


def test_count_is_clamped_and_summary_count(client: httpx.Client, family: str) -> None:
    assert search(client, "/Patient", family=name(family), _count=1_000_000)["total"] == 3
    counted = search(client, "/Patient", family=name(family), _summary="count")
    assert counted["total"] == 3
    assert counted.get("entry", []) == []
    assert "total" not in search(client, "/Patient", family=name(family), _total="none")


def test_reference_search_chaining_and_reverse_chaining(client: httpx.Client) -> None:
    t = tag()
    put(client, {"resourceType": "Patient", "id": f"p{t}", "name": [{"family": f"Chain{t}"}]})
    put(
        client,
        {
            "resourceType": "Observation",
            "id": f"o{t}",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/p{t}"},
            "effectiveDateTime": "2024-01-01",
            "valueQuantity": {
                "value": 72,
                "unit": "/min",
                "system": "http://unitsofmeasure.org",
                "code": "/min",
            },
        },
    )
    assert ids(search(client, "/Observation", subject=f"Patient/p{t}")) == [f"o{t}"]
    assert ids(search(client, "/Observation", patient=f"p{t}")) == [f"o{t}"]
    assert ids(search(client, "/Observation", **{"subject:Patient": f"p{t}"})) == [f"o{t}"]
    assert ids(search(client, "/Observation", **{"subject:Patient.name": f"chain{t}"})) == [f"o{t}"]
    assert ids(search(client, "/Observation", **{"patient.family": f"Chain{t}"})) == [f"o{t}"]
    has = search(
        client,
        "/Patient",
        **{"_has:Observation:patient:code": "http://loinc.org|8867-4", "_id": f"p{t}"},
    )
    assert ids(has) == [f"p{t}"]
    none = search(client, "/Patient", **{"_has:Observation:patient:code": "0000-0", "_id": f"p{t}"})
    assert ids(none) == []


def test_quantity_and_number_precision(client: httpx.Client) -> None:
    t = tag()
    put(
        client,
        {
            "resourceType": "Observation",
            "id": f"q{t}",
            "status": "final",
            "code": {"text": f"q{t}"},
            "valueQuantity": {
                "value": 5.4,
                "unit": "mmol/L",
                "system": "http://unitsofmeasure.org",
                "code": "mmol/L",
            },
        },
    )

    def found(value: str) -> bool:
        return f"q{t}" in ids(
            search(client, "/Observation", **{"code:text": f"q{t}", "value-quantity": value})
        )

    assert found("5.4")
    assert found("5.4|http://unitsofmeasure.org|mmol/L")
    assert found("5.4||mmol/L")
    assert not found("5.4|http://unitsofmeasure.org|mg/dL")
    assert found("5")  # 5 means [4.5, 5.5)
    assert not found("5.0")  # 5.0 means [4.95, 5.05)
    assert found("gt5")
    assert not found("lt5")
    assert found("ap5.5")


def test_include_and_revinclude(client: httpx.Client) -> None:
    t = tag()
    put(client, {"resourceType": "Patient", "id": f"ip{t}", "name": [{"family": f"Inc{t}"}]})
    put(
        client,
        {
            "resourceType": "Encounter",
            "id": f"ie{t}",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/ip{t}"},
        },
    )
    put(
        client,
        {
            "resourceType": "Observation",
            "id": f"io{t}",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": f"Patient/ip{t}"},
            "encounter": {"reference": f"Encounter/ie{t}"},
        },
    )
    bundle = search(
        client,
        "/Encounter",
        _id=f"ie{t}",
        _revinclude="Observation:encounter",
        _include="Encounter:subject",
    )
    assert ids(bundle) == [f"ie{t}"]
    assert sorted(ids(bundle, "include")) == [f"io{t}", f"ip{t}"]
    iterate = client.get(
        "/Observation",
        params=[
            ("_id", f"io{t}"),
            ("_include", "Observation:encounter"),
            ("_include:iterate", "Encounter:subject"),
        ],
    ).json()
    assert sorted(ids(iterate, "include")) == [f"ie{t}", f"ip{t}"]


def test_compartment_search(client: httpx.Client) -> None:
    t = tag()
    put(client, {"resourceType": "Patient", "id": f"cp{t}"})
    put(
        client,
        {
            "resourceType": "Observation",
            "id": f"co{t}",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": f"Patient/cp{t}"},
        },
    )
    put(
        client,
        {"resourceType": "Observation", "id": f"cx{t}", "status": "final", "code": {"text": "x"}},
    )
    assert ids(search(client, f"/Patient/cp{t}/Observation")) == [f"co{t}"]


def test_system_search_with_type(client: httpx.Client, family: str) -> None:
    bundle = search(client, "/", _type="Patient,Practitioner", _id=f"f{family}-a")
    assert ids(bundle) == [f"f{family}-a"]


def test_unknown_parameter_is_reported_or_refused_when_strict(
    client: httpx.Client, family: str
) -> None:
    lenient = search(client, "/Patient", family=name(family), nonsense="1")
    outcomes = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert "nonsense" in outcomes[0]["resource"]["issue"][0]["diagnostics"]
    strict = client.get("/Patient", params={"nonsense": "1"}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert strict.json()["resourceType"] == "OperationOutcome"


def test_post_search_with_form_body(client: httpx.Client, family: str) -> None:
    response = client.post(
        "/Patient/_search",
        content=urlencode({"family": name(family), "gender": "male"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert ids(response.json()) == [f"f{family}-b"]


def test_deleted_and_updated_resources_leave_the_index(client: httpx.Client, family: str) -> None:
    client.delete(f"/Patient/f{family}-b")
    assert f"f{family}-b" not in ids(search(client, "/Patient", family=name(family)))
    put(
        client,
        {
            "resourceType": "Patient",
            "id": f"f{family}-a",
            "name": [{"family": "Renamed" + name(family)}],
        },
    )
    assert f"f{family}-a" not in ids(search(client, "/Patient", **{"family:exact": name(family)}))


def test_bad_search_values_are_400(client: httpx.Client) -> None:
    for params in (
        {"birthdate": "not-a-date"},
        {"_count": "-1"},
        {"_total": "maybe"},
        {"family:bogus": "x"},
        {"_sort": "nonsense"},
        {"value-quantity": "abc"},
    ):
        response = client.get(
            "/Patient" if "value-quantity" not in params else "/Observation", params=params
        )
        assert response.status_code == 400, params
        assert response.json()["resourceType"] == "OperationOutcome"


def test_composite_matches_within_one_component(client: httpx.Client) -> None:
    t = tag()
    loinc = "http://loinc.org"
    put(
        client,
        {
            "resourceType": "Observation",
            "id": f"bp{t}",
            "status": "final",
            "code": {"coding": [{"system": loinc, "code": "85354-9"}], "text": f"bp{t}"},
            "component": [
                {
                    "code": {"coding": [{"system": loinc, "code": "8480-6"}]},
                    "valueQuantity": {
                        "value": 140,
                        "unit": "mmHg",
                        "system": "http://unitsofmeasure.org",
                        "code": "mm[Hg]",
                    },
                },
                {
                    "code": {"coding": [{"system": loinc, "code": "8462-4"}]},
                    "valueQuantity": {
                        "value": 90,
                        "unit": "mmHg",
                        "system": "http://unitsofmeasure.org",
                        "code": "mm[Hg]",
                    },
                },
            ],
        },
    )

    def found(value: str) -> bool:
        bundle = search(
            client,
            "/Observation",
            **{"code:text": f"bp{t}", "component-code-value-quantity": value},
        )
        return f"bp{t}" in ids(bundle)

    assert found(f"{loinc}|8480-6$gt130")
    assert found("8462-4$90")
    assert not found(f"{loinc}|8462-4$gt130")  # 140 belongs to the systolic component, not this one
    assert found("8480-6$140|http://unitsofmeasure.org|mm[Hg]")
    bad = client.get("/Observation", params={"component-code-value-quantity": "8480-6"})
    assert bad.status_code == 400


def test_composites_of_different_shapes_are_stored_together_and_found(
    client: httpx.Client,
) -> None:
    """A token$token and a token$quantity composite of one resource go in one INSERT (it used to
    fail with a 500); a quantity with a unit but no code is found by `||unit`, as elsewhere."""
    t = tag()
    context = "http://terminology.hl7.org/CodeSystem/usage-context-type"
    put(
        client,
        {
            "resourceType": "PlanDefinition",
            "id": f"pd{t}",
            "status": "draft",
            "name": f"pd{t}",
            "useContext": [
                {
                    "code": {"system": context, "code": "focus"},
                    "valueCodeableConcept": {
                        "coding": [{"system": "http://snomed.info/sct", "code": "3928002"}]
                    },
                },
                {
                    "code": {"system": context, "code": "age"},
                    "valueQuantity": {"value": 12, "unit": "a"},
                },
            ],
        },
    )

    def found(**params: str) -> bool:
        return f"pd{t}" in ids(search(client, "/PlanDefinition", name=f"pd{t}", **params))

    assert found(**{"context-type-value": f"{context}|focus$http://snomed.info/sct|3928002"})
    assert found(**{"context-type-quantity": f"{context}|age$12||a"})
    assert not found(**{"context-type-quantity": f"{context}|age$12||mo"})
    assert not found(**{"context-type-quantity": f"{context}|focus$12||a"})


def test_canonical_references_match_relative_forms_and_versions(client: httpx.Client) -> None:
    t = tag()
    absolute = f"http://example.org/fhir/Library/lib{t}"
    put(
        client,
        {
            "resourceType": "Library",
            "id": f"lib{t}",
            "status": "draft",
            "type": {"coding": [{"code": "logic-library"}]},
            "relatedArtifact": [
                {"type": "depends-on", "resource": f"Library/dep{t}"},
                {"type": "depends-on", "resource": f"{absolute}|1.0"},
            ],
        },
    )

    def found(value: str) -> bool:
        bundle = search(client, "/Library", **{"depends-on": value, "_id": f"lib{t}"})
        return f"lib{t}" in ids(bundle)

    assert found(f"Library/dep{t}")
    assert found(f"dep{t}")
    assert found(absolute)  # every version
    assert found(f"{absolute}|1.0")
    assert not found(f"{absolute}|2.0")
    assert not found(f"{absolute}x")
    assert not found(f"Library/dep{t}x")


def test_id_takes_the_token_forms_and_last_updated_is_never_missing(
    client: httpx.Client, family: str
) -> None:
    a = f"f{family}-a"
    assert ids(search(client, "/Patient", _id=f"|{a}")) == [a]
    assert ids(search(client, "/Patient", _id=f"urn:x|{a}")) == []
    assert ids(search(client, "/Patient", _id=a, **{"_lastUpdated:missing": "false"})) == [a]
    assert ids(search(client, "/Patient", _id=a, **{"_lastUpdated:missing": "true"})) == []
    assert ids(search(client, "/Patient", _id=a, **{"_id:missing": "false"})) == [a]
    assert client.get("/Patient", params={"_id:missing": "maybe"}).status_code == 400


def test_tokens_and_uris_longer_than_the_index_are_still_found(client: httpx.Client) -> None:
    """Codes and uris are indexed on their first 255 characters: longer ones are found by their
    full value (and by anything sharing those 255 characters)."""
    t = tag()
    value = f"{t}-" + "9" * 300
    profile = f"http://example.org/fhir/StructureDefinition/{t}/" + "p" * 300
    put(
        client,
        {
            "resourceType": "Patient",
            "id": f"long{t}",
            "meta": {"profile": [profile]},
            "identifier": [{"system": "urn:example:long", "value": value}],
        },
    )
    assert ids(search(client, "/Patient", identifier=f"urn:example:long|{value}")) == [f"long{t}"]
    assert ids(search(client, "/Patient", identifier=value)) == [f"long{t}"]
    assert ids(search(client, "/Patient", _profile=profile)) == [f"long{t}"]
    assert ids(search(client, "/Patient", identifier=f"{t}-9")) == []
