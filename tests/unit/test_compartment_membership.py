"""Compartment membership of a body, v2 restrictions judged on a body, and how `patient/`
scopes apply per type (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from santinel.auth.policy import authorize
from santinel.auth.principal import Principal
from santinel.auth.scopes import parse_scopes
from santinel.fhir.compartment_membership import (
    in_compartment,
    only_in_compartment,
    owners,
    patient_reach,
)
from santinel.fhir.search.match_body import any_matches, matches

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def observation(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "category": [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}],
        **extra,
    }


def test_members_follow_the_compartment_definition_params() -> None:
    mine = observation(subject={"reference": "Patient/a"})
    assert owners(mine) == {"a"}
    assert in_compartment(mine, ("Patient", "a"))
    assert not in_compartment(mine, ("Patient", "b"))
    # `focus` is not a Patient-compartment parameter of Observation
    about = observation(subject={"reference": "Patient/b"}, focus=[{"reference": "Patient/a"}])
    assert owners(about) == {"b"}
    shared = observation(subject={"reference": "Patient/a"}, performer=[{"reference": "Patient/b"}])
    assert in_compartment(shared, ("Patient", "a"))
    assert not only_in_compartment(shared, ("Patient", "a"))
    group = observation(subject={"reference": "Group/a"})
    assert owners(group) == set()
    absolute = observation(subject={"reference": "https://elsewhere.example/fhir/Patient/a"})
    assert owners(absolute) == {"a"}  # as the search index reads it


def test_a_patient_is_in_its_own_compartment_and_in_those_it_links_to() -> None:
    assert owners({"resourceType": "Patient", "id": "a"}) == {"a"}
    linked = {
        "resourceType": "Patient",
        "id": "a",
        "link": [{"other": {"reference": "Patient/b"}, "type": "seealso"}],
    }
    assert owners(linked) == {"a", "b"}
    assert not only_in_compartment(linked, ("Patient", "a"))


@pytest.mark.parametrize(
    ("resource_type", "reach"),
    [
        ("Observation", "member"),
        ("Patient", "member"),
        ("Encounter", "member"),
        ("Practitioner", "free"),
        ("Organization", "free"),
        ("Medication", "free"),
        ("Task", "outside"),  # has patient params, but no compartment confines them
        ("Bundle", "outside"),
        ("Binary", "outside"),
        ("Slot", "outside"),  # refers to a Schedule, which is in a patient's compartment
        ("PractitionerRole", "outside"),  # a member of the Practitioner compartment
        ("NotAType", "outside"),
    ],
)
def test_patient_reach(resource_type: str, reach: str) -> None:
    assert patient_reach(resource_type) == reach


def test_patient_scopes_per_type() -> None:
    patient = Principal("c", "internal", parse_scopes("patient/*.cruds"), patient="a")
    assert authorize(patient, "read", "Observation").compartment == ("Patient", "a")
    free = authorize(patient, "search-type", "Practitioner")
    assert free.allowed
    assert free.compartment is None
    assert not authorize(patient, "create", "Practitioner").allowed
    assert not authorize(patient, "read", "Task").allowed
    assert authorize(patient, "history-system", "*").compartment == ("Patient", "a")
    system = Principal("c", "internal", parse_scopes("system/*.cruds"))
    assert authorize(system, "create", "Task").allowed


def test_restrictions_judged_on_a_body() -> None:
    lab = observation(subject={"reference": "Patient/a"})
    vitals = observation(category=[{"coding": [{"system": CATEGORY, "code": "vital-signs"}]}])
    assert matches(lab, "category", f"{CATEGORY}|laboratory") is True
    assert matches(lab, "category", "laboratory") is True
    assert matches(lab, "category", "|laboratory") is False
    assert matches(lab, "category", f"{CATEGORY}|") is True
    assert matches(vitals, "category", f"{CATEGORY}|laboratory,{CATEGORY}|vital-signs") is True
    assert matches(vitals, "category", f"{CATEGORY}|laboratory") is False
    assert matches(lab, "subject", "Patient/a") is True
    assert matches(lab, "subject", "a") is True
    assert matches(lab, "subject", "Patient/b") is False
    assert matches(lab, "date", "ge2020") is None  # not judged on a body
    assert matches(lab, "category:not", "laboratory") is None
    both = ((("category", "laboratory"), ("date", "ge2020")),)
    assert any_matches(lab, both) is None
    assert any_matches(vitals, both) is False
    assert any_matches(vitals, ((("category", "laboratory"),), (("category", "vital-signs"),)))
