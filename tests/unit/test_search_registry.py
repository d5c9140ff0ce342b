"""The registry of official R4 search parameters and compartments (generated definitions)."""

from __future__ import annotations

import pytest

from santinel.fhir.search import registry

NOT_DOMAIN_RESOURCES = ("Bundle", "Binary", "Parameters")


def test_every_official_definition_is_loaded() -> None:
    assert registry.definition_count() >= 1_375
    assert len(registry.resource_types()) == 146
    entries = sum(len(registry.params_for(t)) for t in registry.resource_types())
    assert entries > 3_000  # multi-base definitions and inherited parameters count per type


@pytest.mark.parametrize("resource_type", registry.resource_types())
def test_every_type_inherits_the_resource_parameters(resource_type: str) -> None:
    params = registry.params_for(resource_type)
    assert params["_id"].type == "token"
    assert params["_id"].expression == "id"
    assert params["_lastUpdated"].expression == "meta.lastUpdated"
    assert {"_tag", "_profile", "_security", "_source", "_has", "_list", "_type"} <= set(params)
    assert ("_text" in params) is (resource_type not in NOT_DOMAIN_RESOURCES)


def test_observation_parameters() -> None:
    params = registry.params_for("Observation")
    assert params["code"].type == "token"
    assert params["code"].expression == "Observation.code"
    assert params["date"].type == "date"
    assert params["value-quantity"].type == "quantity"
    assert params["value-quantity"].expression == (
        "Observation.value.ofType(Quantity) | Observation.value.ofType(SampledData)"
    )
    assert params["subject"].type == "reference"
    assert {"Patient", "Group", "Device", "Location"} <= set(params["subject"].targets)
    composite = params["component-code-value-quantity"]
    assert composite.type == "composite"
    assert composite.expression == "Observation.component"
    assert [(c.code, c.type, c.expression) for c in composite.components] == [
        ("component-code", "token", "code"),
        ("component-value-quantity", "quantity", "value.ofType(Quantity)"),
    ]


def test_multi_base_expressions_are_restricted_to_their_type() -> None:
    patient = registry.param("Observation", "patient")
    assert patient is not None
    assert patient.expression == "Observation.subject.where(resolve() is Patient)"
    assert patient.url == "http://hl7.org/fhir/SearchParameter/clinical-patient"
    assert len(patient.base) > 20
    assert "AllergyIntolerance" in patient.base
    allergy = registry.param("AllergyIntolerance", "patient")
    assert allergy is not None
    assert allergy.expression == "AllergyIntolerance.patient"


def test_expressions_are_fixed_for_fhirpathpy() -> None:
    for resource_type in registry.resource_types():
        for param in registry.params_for(resource_type).values():
            expressions = [param.expression or ""] + [c.expression for c in param.components]
            for expression in expressions:
                assert " as " not in expression, (resource_type, param.code)
                assert ".as(" not in expression, (resource_type, param.code)
                assert "ofType(DateTime)" not in expression
    device = registry.param("DeviceRequest", "code")
    assert device is not None
    assert device.expression == "DeviceRequest.code.ofType(CodeableConcept)"
    death = registry.param("Patient", "death-date")
    assert death is not None
    assert death.expression == "Patient.deceased.ofType(dateTime)"


def test_unindexable_parameters_are_special() -> None:
    for code in ("_text", "_content", "_query", "_filter", "_has", "_list", "_type"):
        param = registry.param("Patient", code)
        assert param is not None
        assert param.type == "special"
        assert param.expression is None
    near = registry.param("Location", "near")
    assert near is not None
    assert near.type == "special"


def test_any_target_is_expanded() -> None:
    composed = registry.param("ActivityDefinition", "composed-of")
    assert composed is not None
    assert len(composed.targets) == 145
    assert "Parameters" not in composed.targets


def test_composite_components_match_their_definitions() -> None:
    # R4's DocumentReference-relationship gives each component the other one's expression.
    relationship = registry.param("DocumentReference", "relationship")
    assert relationship is not None
    assert [(c.code, c.type, c.expression) for c in relationship.components] == [
        ("relatesto", "reference", "target"),
        ("relation", "token", "code"),
    ]


def test_comparators_and_multiple_or() -> None:
    birthdate = registry.param("Patient", "birthdate")
    assert birthdate is not None
    assert "ge" in birthdate.comparators
    composite = registry.param("Observation", "code-value-quantity")
    assert composite is not None
    assert composite.multiple_or is False


def test_unknown_types_and_codes() -> None:
    assert registry.params_for("NotAType") == {}
    assert registry.param("Patient", "no-such-param") is None


def test_patient_compartment() -> None:
    assert registry.compartments() == (
        "Device",
        "Encounter",
        "Patient",
        "Practitioner",
        "RelatedPerson",
    )
    assert registry.compartment_params("Patient", "Observation") == ("subject", "performer")
    assert registry.compartment_params("Patient", "ActivityDefinition") == ()
    members = registry.resource_types_in_compartment("Patient")
    assert "Observation" in members
    assert "ActivityDefinition" not in members
    assert registry.compartment_params("Nope", "Observation") == ()


def test_compartment_params_are_reference_params() -> None:
    for compartment in registry.compartments():
        for resource_type in registry.resource_types_in_compartment(compartment):
            for code in registry.compartment_params(compartment, resource_type):
                param = registry.param(resource_type, code)
                assert param is not None, (compartment, resource_type, code)
                assert param.type == "reference"
