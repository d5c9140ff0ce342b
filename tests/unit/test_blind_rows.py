"""Which blind-index rows a Patient writes (`storage.sql.search.blind.BlindRows`): a value is
written once, under the most specific parameter that has it; each row costs a page write per
commit (issue 8), so a regression here is a slower create."""

from __future__ import annotations

from collections import Counter
from typing import Any

from santinel.crypto.blind_index import BlindIndex
from santinel.crypto.envelope import new_key
from santinel.fhir.search.extract import extract
from santinel.storage.sql.search.blind import BlindRows

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [
        {"family": "Petit", "given": ["Camille", "Anaïs"]},
        {"text": "Camille Petit-Durand", "prefix": ["Dr"]},
    ],
    "telecom": [
        {"system": "phone", "value": "+33 6 21 65 63 18"},
        {"system": "email", "value": "camille@example.fr"},
    ],
    "address": [{"line": ["15 rue Pasteur"], "city": "Montpellier", "postalCode": "34000"}],
}


def rows_by_param(resource: dict[str, Any], plaintext_names: bool = False) -> Counter[str]:
    _, rows = BlindRows(BlindIndex(new_key()), plaintext_names).split(
        resource["resourceType"], extract(resource)
    )
    return Counter(r["param"] for r in {(r["param"], r["code"]): r for r in rows}.values())


def test_family_and_given_are_not_repeated_under_name_nor_phonetic() -> None:
    rows = rows_by_param(PATIENT)
    assert "phonetic" not in rows
    # v + x for the text and for the prefix "Dr"; prefixes of "camille petit-durand" (20
    # characters): 3 to 19, "camille " being "camille"
    assert rows["name"] == 2 + 2 + 16
    assert rows["family"] == 2 + 2  # petit: v, x, pet, peti (the whole value is its v)
    assert rows["given"] == (2 + 4) + (2 + 2)  # camille: cam…camill; anais: ana, anai


def test_city_and_postal_code_are_not_repeated_under_address_nor_phone_under_telecom() -> None:
    rows = rows_by_param(PATIENT)
    assert rows["address"] == 2  # the line only: v, x
    assert rows["address-city"] == 2 + 8  # montpellier: v, x, mon…montpelli
    assert rows["address-postalcode"] == 2
    assert rows["telecom"] == 2
    assert "phone" not in rows
    assert "email" not in rows


def test_a_related_person_keeps_its_names_under_name() -> None:
    person = {
        "resourceType": "RelatedPerson",
        "id": "r1",
        "patient": {"reference": "Patient/p1"},
        "name": [{"family": "Roux"}],
    }
    assert rows_by_param(person) == Counter({"name": 2 + 1})  # v, x, rou


def test_with_names_in_clear_the_address_is_still_written_once() -> None:
    rows = rows_by_param(PATIENT, plaintext_names=True)
    assert not {"name", "family", "given", "phonetic"} & set(rows)
    assert rows["address"] == 2
