"""Searches on blind-indexed parameters whose values are written once, under the most specific
parameter (`identifying.COVERED_BY`, `TELECOM_OF_SYSTEM`): `name` and `phonetic` answered from
the `family` and `given` digests, `address` from the city and postal code, `phone` and `email`
from `telecom`; and prefixes whose whole value is its `v` digest. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest


def tag() -> str:
    return uuid.uuid4().hex[:10]


def put(client: httpx.Client, resource: dict[str, Any]) -> None:
    response = client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
    assert response.status_code in (200, 201), response.text


def found(
    client: httpx.Client, path: str, params: dict[str, str] | list[tuple[str, str]]
) -> list[str]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return sorted(e["resource"]["id"] for e in response.json().get("entry", []))


@pytest.fixture
def people(client: httpx.Client) -> str:
    """p<t>-a: family Vaillant<t>, given Amélie<t> + Jo, a prefix and a text, a city, a phone;
    p<t>-b: family only, an email, a postal code only; p<t>-c: no name, no telecom."""
    t = tag()
    put(
        client,
        {
            "resourceType": "Patient",
            "id": f"p{t}-a",
            "name": [
                {"family": f"Vaillant{t}", "given": [f"Amélie{t}", "Jo"]},
                {"text": f"Docteur Amélie V{t}", "prefix": [f"Dr{t}"]},
            ],
            "telecom": [{"system": "phone", "value": f"+33 6 {t}"}],
            "address": [{"line": [f"12 rue des Lilas {t}"], "city": f"Montélimar{t}"}],
        },
    )
    put(
        client,
        {
            "resourceType": "Patient",
            "id": f"p{t}-b",
            "name": [{"family": f"Vaillantes{t}"}],
            "telecom": [{"system": "email", "value": f"b{t}@example.fr"}],
            "address": [{"postalCode": f"26{t}"}],
        },
    )
    put(client, {"resourceType": "Patient", "id": f"p{t}-c", "gender": "other"})
    return t


def test_name_finds_family_and_given_by_prefix_whole_value_and_exact_text(
    client: httpx.Client, people: str
) -> None:
    t = people
    a, b = f"p{t}-a", f"p{t}-b"
    assert found(client, "/Patient", {"name": "vaill"}) != []  # shared by other runs' patients
    assert found(client, "/Patient", {"name": f"vaillant{t}"}) == [a]  # the whole family
    assert found(client, "/Patient", {"name": f"VAILLANT{t[:3]}"}) == [a]  # a prefix of it
    assert found(client, "/Patient", {"name": f"vaillantes{t}"}) == [b]
    assert found(client, "/Patient", {"name": f"amelie{t}"}) == [a]  # a given name
    assert found(client, "/Patient", {"name": "Amé"}) != []
    assert found(client, "/Patient", {"name": "jo", "_id": a}) == [a]  # 2 letters: whole value
    assert found(client, "/Patient", {"name": f"dr{t}"}) == [a]  # the prefix: its own rows
    assert found(client, "/Patient", {"name": f"docteur amelie v{t}"}) == [a]  # the text
    assert found(client, "/Patient", {"name:exact": f"Amélie{t}"}) == [a]
    assert found(client, "/Patient", {"name:exact": f"amelie{t}"}) == []
    assert found(client, "/Patient", {"name:exact": f"Vaillant{t}"}) == [a]
    assert found(client, "/Patient", {"family": f"amelie{t}"}) == []  # a given is no family
    assert found(client, "/Patient", {"given": f"vaillant{t}"}) == []


def test_a_value_is_its_own_prefix_and_longer_values_are_found_by_their_first_20_letters(
    client: httpx.Client,
) -> None:
    t = tag()
    long_family = f"Abcdefghijklmnopqrstuvwxyz{t}"  # over 20 characters
    put(client, {"resourceType": "Patient", "id": f"l{t}", "name": [{"family": long_family}]})
    put(client, {"resourceType": "Patient", "id": f"s{t}", "name": [{"family": f"Zq{t}"}]})
    assert found(client, "/Patient", {"family": long_family[:20], "_id": f"l{t}"}) == [f"l{t}"]
    assert found(client, "/Patient", {"family": long_family}) == [f"l{t}"]  # whole value
    assert found(client, "/Patient", {"name": long_family}) == [f"l{t}"]
    assert found(client, "/Patient", {"family": f"zq{t}"}) == [f"s{t}"]  # exactly the value
    assert found(client, "/Patient", {"name": f"zq{t}"}) == [f"s{t}"]
    assert found(client, "/Patient", {"family": f"zq{t}x"}) == []  # longer than the value


def test_phonetic_matches_whole_names_only(client: httpx.Client, people: str) -> None:
    t = people
    a = f"p{t}-a"
    assert found(client, "/Patient", {"phonetic": f"Vaillant{t}"}) == [a]
    assert found(client, "/Patient", {"phonetic": f"amelie{t}"}) == [a]
    assert found(client, "/Patient", {"phonetic": f"docteur amelie v{t}"}) == [a]
    assert found(client, "/Patient", {"phonetic": f"vaillant{t[:3]}"}) == []  # no prefix
    assert found(client, "/Patient", {"phonetic:exact": f"Amélie{t}"}) == [a]


def test_address_finds_city_postal_code_and_line(client: httpx.Client, people: str) -> None:
    t = people
    a, b = f"p{t}-a", f"p{t}-b"
    assert found(client, "/Patient", {"address": f"montelimar{t}"}) == [a]  # the city
    assert found(client, "/Patient", {"address:exact": f"Montélimar{t}"}) == [a]
    assert found(client, "/Patient", {"address:exact": f"montelimar{t}"}) == []
    assert found(client, "/Patient", {"address": f"montelimar{t[:3]}"}) == []  # whole parts
    assert found(client, "/Patient", {"address-city": f"montelimar{t[:3]}"}) == [a]  # prefix
    assert found(client, "/Patient", {"address": f"26{t}"}) == [b]  # the postal code
    assert found(client, "/Patient", {"address-postalcode": f"26{t}"}) == [b]
    assert found(client, "/Patient", {"address": f"12 rue des lilas {t}"}) == [a]  # a line
    assert found(client, "/Patient", {"address-city": f"26{t}"}) == []


def test_phone_and_email_are_telecom_of_their_system(client: httpx.Client, people: str) -> None:
    t = people
    a, b = f"p{t}-a", f"p{t}-b"
    phone, email = f"+33 6 {t}", f"b{t}@example.fr"
    assert found(client, "/Patient", {"phone": phone}) == [a]
    assert found(client, "/Patient", {"phone": f"phone|{phone}"}) == [a]
    assert found(client, "/Patient", {"phone": f"email|{phone}"}) == []
    assert found(client, "/Patient", {"telecom": phone}) == [a]
    assert found(client, "/Patient", {"email": email}) == [b]
    assert found(client, "/Patient", {"phone": email}) == []  # an email is not a phone
    assert found(client, "/Patient", {"email": phone}) == []
    ours = f"p{t}-a,p{t}-b,p{t}-c"
    assert found(client, "/Patient", {"_id": ours, "phone:not": phone}) == [b, f"p{t}-c"]
    assert found(client, "/Patient", {"_id": ours, "email:not": email}) == [a, f"p{t}-c"]


def test_missing_counts_the_values_written_under_another_parameter(
    client: httpx.Client, people: str
) -> None:
    t = people
    a, b, c = f"p{t}-a", f"p{t}-b", f"p{t}-c"
    ours = f"{a},{b},{c}"

    def where(modifier: str, value: str) -> list[str]:
        return found(client, "/Patient", {"_id": ours, modifier: value})

    assert where("name:missing", "false") == [a, b]  # b: a family only
    assert where("name:missing", "true") == [c]
    assert where("phonetic:missing", "false") == [a, b]
    assert where("given:missing", "true") == [b, c]
    assert where("phone:missing", "false") == [a]  # b has an email only
    assert where("phone:missing", "true") == [b, c]
    assert where("email:missing", "false") == [b]
    assert where("telecom:missing", "false") == [a, b]
    assert where("address:missing", "false") == [a, b]  # b: a postal code only
    assert where("address:missing", "true") == [c]
    assert where("address-city:missing", "false") == [a]


def test_chained_search_on_a_name_found_through_family(client: httpx.Client) -> None:
    t = tag()
    put(client, {"resourceType": "Patient", "id": f"ch{t}", "name": [{"family": f"Chaîne{t}"}]})
    put(
        client,
        {
            "resourceType": "Observation",
            "id": f"o{t}",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": f"Patient/ch{t}"},
        },
    )
    assert found(client, "/Observation", {"subject:Patient.name": f"chaine{t}"}) == [f"o{t}"]
    assert found(client, "/Observation", {"subject:Patient.name": f"chaine{t[:2]}"}) != []


def test_related_person_names_have_their_own_rows(client: httpx.Client) -> None:
    t = tag()
    put(client, {"resourceType": "Patient", "id": f"rp{t}"})
    put(
        client,
        {
            "resourceType": "RelatedPerson",
            "id": f"r{t}",
            "patient": {"reference": f"Patient/rp{t}"},
            "name": [{"family": f"Proche{t}", "given": ["Lou"]}],
            "telecom": [{"system": "phone", "value": f"01 {t}"}],
        },
    )
    assert found(client, "/RelatedPerson", {"name": f"proche{t[:4]}"}) == [f"r{t}"]
    assert found(client, "/RelatedPerson", {"phonetic": f"proche{t}"}) == [f"r{t}"]
    assert found(client, "/RelatedPerson", {"phone": f"01 {t}"}) == [f"r{t}"]
