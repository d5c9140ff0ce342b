"""The synthetic demo data: deterministic, valid FHIR R4, coherent French identities."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson
import pytest

from santinel.demo import directory, generate, patient_group
from santinel.demo.identifiers import (
    FINESS_SYSTEM,
    INS_NIR_SYSTEM,
    RPPS_SYSTEM,
    is_luhn_valid,
    is_valid_nir,
    luhn_digit,
    nir,
    nir_key,
)
from santinel.demo.places import COMMUNES, FOREIGN_COUNTRIES
from santinel.fhir.validation import parse_resource

SEED = 20240611
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"


@pytest.fixture(scope="module")
def resources() -> list[dict[str, Any]]:
    return [resource for group in generate(40, SEED) for resource in group]


def of_type(resources: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == resource_type]


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def identifier(resource: dict[str, Any], system: str) -> str:
    return next(i["value"] for i in resource["identifier"] if i["system"] == system)


# -- determinism ---------------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes() -> None:
    first = orjson.dumps(list(generate(15, SEED)))
    assert orjson.dumps(list(generate(15, SEED))) == first
    assert orjson.dumps(list(generate(15, SEED + 1))) != first


def test_a_patient_does_not_depend_on_how_many_are_generated() -> None:
    groups = list(generate(12, SEED))
    assert groups[0] == directory(SEED)
    assert groups[8] == patient_group(SEED, 7)


def test_ids_are_unique_and_name_the_seed(resources: list[dict[str, Any]]) -> None:
    keys = [(r["resourceType"], r["id"]) for r in resources]
    assert len(keys) == len(set(keys))
    assert all(r["id"].startswith(f"demo-{SEED}-") for r in resources)


def test_generation_is_a_lazy_iterator() -> None:
    groups = generate(10**9, SEED)  # would never fit in memory if it were a list
    assert next(groups)[0]["resourceType"] == "Organization"
    assert next(groups)[0]["resourceType"] == "Patient"


def test_generation_is_fast() -> None:
    started = time.perf_counter()
    count = sum(len(group) for group in generate(500, SEED))
    elapsed = time.perf_counter() - started
    assert count > 500 * 20
    assert elapsed < 15, f"{count} resources took {elapsed:.1f} s"  # ~1 s on an idle machine


# -- validity ------------------------------------------------------------------------------


def test_every_resource_is_valid_fhir(resources: list[dict[str, Any]]) -> None:
    for resource in resources:
        assert parse_resource(orjson.dumps(resource)) == resource


def test_every_reference_resolves_within_the_generated_set(
    resources: list[dict[str, Any]],
) -> None:
    known = {f"{r['resourceType']}/{r['id']}" for r in resources}
    found = [ref for r in resources for ref in references(r)]
    assert found
    assert set(found) <= known


def test_each_patient_has_a_full_record(resources: list[dict[str, Any]]) -> None:
    patients = of_type(resources, "Patient")
    assert len(patients) == 40
    assert 20 <= len(resources) / len(patients) <= 45
    subjects = {ref for r in resources if "subject" in r for ref in [r["subject"]["reference"]]}
    assert subjects == {f"Patient/{p['id']}" for p in patients}
    for resource_type in ("Encounter", "Observation", "Condition", "MedicationRequest"):
        assert of_type(resources, resource_type), resource_type
    genders = {p["gender"] for p in patients}
    assert genders == {"male", "female"}


# -- French identities ---------------------------------------------------------------------


def test_nir_key_matches_the_official_formula() -> None:
    assert nir_key("1850578006084") == f"{97 - 1850578006084 % 97:02d}"
    value = nir("female", date(1983, 11, 2), "69", "388", 12)
    assert value == "2831169388012" + nir_key("2831169388012")
    assert is_valid_nir(value)
    assert not is_valid_nir(value[:-2] + f"{(int(value[-2:]) + 1) % 100:02d}")
    with pytest.raises(ValueError, match="NIR"):
        nir("male", date(1990, 1, 1), "2A", "004", 1)


def test_nir_is_consistent_with_sex_birth_date_and_birth_place(
    resources: list[dict[str, Any]],
) -> None:
    by_postal = {(c.name, c.postal_codes[0]): c for c in COMMUNES}
    by_iso = {c.iso: c for c in FOREIGN_COUNTRIES}
    abroad = 0
    for patient in of_type(resources, "Patient"):
        value = identifier(patient, INS_NIR_SYSTEM)
        assert is_valid_nir(value), value
        assert value[0] == ("1" if patient["gender"] == "male" else "2")
        year, month, _ = patient["birthDate"].split("-")
        assert value[1:3] == year[2:]
        assert value[3:5] == month
        place = next(e["valueAddress"] for e in patient["extension"] if e["url"] == BIRTH_PLACE)
        if place["country"] == "FR":
            commune = by_postal[(place["city"], place["postalCode"])]
            assert value[5:10] == commune.insee
        else:
            abroad += 1
            assert value[5:10] == "99" + by_iso[place["country"]].insee
    assert abroad < 40


def test_addresses_are_real_communes_with_their_postal_codes(
    resources: list[dict[str, Any]],
) -> None:
    postal_codes = {(c.name, p) for c in COMMUNES for p in c.postal_codes}
    for resource in resources:
        for address in resource.get("address", []):
            assert (address["city"], address["postalCode"]) in postal_codes
            assert address["country"] == "FR"
            assert address["line"]
        for telecom in resource.get("telecom", []):
            if telecom["system"] == "phone":
                assert telecom["value"].startswith("+33 ")


def test_practitioner_and_organization_numbers_carry_a_luhn_key(
    resources: list[dict[str, Any]],
) -> None:
    assert luhn_digit("7992739871") == "3"  # the textbook example
    for practitioner in of_type(resources, "Practitioner"):
        rpps = identifier(practitioner, RPPS_SYSTEM)
        assert len(rpps) == 11
        assert is_luhn_valid(rpps)
    for organization in of_type(resources, "Organization"):
        finess = identifier(organization, FINESS_SYSTEM)
        assert len(finess) == 9
        assert is_luhn_valid(finess)
        assert any(c.department == finess[:2] for c in COMMUNES)


# -- clinical content ----------------------------------------------------------------------


def quantities(observation: dict[str, Any]) -> list[dict[str, Any]]:
    if "valueQuantity" in observation:
        return [observation["valueQuantity"]]
    return [c["valueQuantity"] for c in observation["component"]]


def test_observations_are_coded_in_loinc_with_ucum_units(resources: list[dict[str, Any]]) -> None:
    categories = set()
    for observation in of_type(resources, "Observation"):
        assert observation["code"]["coding"][0]["system"] == LOINC
        category = observation["category"][0]["coding"][0]["code"]
        categories.add(category)
        for value in quantities(observation):
            assert value["system"] == UCUM
            assert value["code"]
        if category == "laboratory":
            assert observation["referenceRange"]
            assert observation["interpretation"][0]["coding"][0]["code"] in ("H", "L", "N")
    assert categories == {"vital-signs", "laboratory"}


def test_vital_signs_cover_the_expected_loinc_codes(resources: list[dict[str, Any]]) -> None:
    codes = {
        coding["code"] for o in of_type(resources, "Observation") for coding in o["code"]["coding"]
    }
    expected = {"8867-4", "85354-9", "8310-5", "29463-7", "8302-2", "59408-5", "2708-6"}
    assert expected <= codes
    assert {"2339-0", "718-7", "2160-0", "2093-3"} <= codes
    panels = [
        o for o in of_type(resources, "Observation") if o["code"]["coding"][0]["code"] == "85354-9"
    ]
    components = {c["code"]["coding"][0]["code"] for p in panels for c in p["component"]}
    assert components == {"8480-6", "8462-4"}


def test_observations_happen_during_their_encounter(resources: list[dict[str, Any]]) -> None:
    periods = {
        f"Encounter/{e['id']}": (e["period"]["start"], e["period"]["end"])
        for e in of_type(resources, "Encounter")
    }
    for observation in of_type(resources, "Observation"):
        start, end = periods[observation["encounter"]["reference"]]
        assert start <= observation["effectiveDateTime"] <= end


def test_conditions_and_prescriptions_use_snomed_and_atc(resources: list[dict[str, Any]]) -> None:
    for condition in of_type(resources, "Condition"):
        assert condition["code"]["coding"][0]["system"] == "http://snomed.info/sct"
    for request in of_type(resources, "MedicationRequest"):
        assert request["medicationCodeableConcept"]["coding"][0]["system"] == (
            "http://www.whocc.no/atc"
        )
        assert request["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["system"] == UCUM
