"""Which blind-index rows a Patient writes (`storage.sql.search.blind.BlindRows`): a value is
written once, under the most specific parameter that has it; each row costs a page write per
commit (issue 8), so a regression here is a slower create."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from santinel.crypto.blind_index import BlindIndex, BlindKeyring
from santinel.crypto.envelope import new_key
from santinel.fhir.dates import parse_period
from santinel.fhir.search.extract import extract
from santinel.storage.sql.search.blind import BlindRows, date_text, year_of

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


def test_date_text_names_exactly_the_periods_parse_period_gives() -> None:
    rng = random.Random(7)
    texts = ["1970", "2000-02", "2024-02-29", "1900-12-31", "0001", "0001-01-01", "9998-12"]
    texts += ["9999", "9999-12", "9999-12-31", "9999-01-01"]
    texts += [f"{rng.randint(1, 9998):04d}-{rng.randint(1, 12):02d}" for _ in range(200)]
    texts += [
        f"{rng.randint(1, 9998):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        for _ in range(400)
    ]
    texts += [f"{rng.randint(1, 9998):04d}" for _ in range(200)]
    for text in texts:
        period = parse_period(text)
        assert date_text(period.start, period.end) == text
        assert date_text(period.start, period.end - 1) is None  # not a whole period
        assert date_text(period.start + 1, period.end) is None
        assert year_of(period.start) == (
            parse_period(text[:4]).start,
            parse_period(text[:4]).end,
        )
    hour = parse_period("2024-02-29T10:00")
    assert date_text(hour.start, hour.end) is None


def test_a_keyring_writes_under_its_newest_key_and_searches_under_all() -> None:
    old, new = BlindIndex(new_key()), BlindIndex(new_key())
    ring = BlindKeyring([("k1", old)])
    assert ring.terms("Patient.family", "v", "x") == (old.term("Patient.family", "v", "x"),)
    ring.replace([("k2", new), ("k1", old)])  # a rotation: the same object, new keys
    assert ring.term("Patient.family", "v", "x") == new.term("Patient.family", "v", "x")
    assert ring.terms("Patient.family", "v", "x") == (
        new.term("Patient.family", "v", "x"),
        old.term("Patient.family", "v", "x"),
    )
    assert ring.key_ids == ("k2", "k1")
