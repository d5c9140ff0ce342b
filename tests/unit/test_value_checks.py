"""Required bindings and calendar dates (`santinel.fhir.value_checks`), by R4 type wherever the type
occurs: resources, datatypes, choice elements, extensions, contained and bundled resources."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from santinel.fhir.calendar_dates import calendar_problem
from santinel.fhir.definitions import load
from santinel.fhir.value_checks import value_issues

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "value",
    [
        "2024",
        "2023-02",
        "2024-02-29",
        "2000-02-29",
        "2023-04-30",
        "2023-12-31T23:59:59Z",
        "2016-12-31T23:59:60Z",  # a leap second: the R4 regex allows it
        "2023-01-31T10:00:00.123+14:00",
        "2023-03-31T00:00:00-12:00",
    ],
)
def test_real_dates_pass(value: str) -> None:
    assert calendar_problem(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "2023-02-29",
        "1900-02-29",  # divisible by 100, not by 400: not a leap year
        "2021-02-30",
        "2023-04-31",
        "2023-11-31T10:00:00Z",
        "2023-13",
        "2023-00-10",
        "2023-01-00",
        "2023-01-01T24:00:00Z",
        "2023-01-01T10:60:00Z",
        "2023-01-01T10:00:61Z",
        "2023-01-01T10:00:00+15:00",
        "0000-01-01",
    ],
)
def test_impossible_dates_are_refused(value: str) -> None:
    assert calendar_problem(value) is not None


def expressions(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i.code, i.expression[0]) for i in value_issues(resource)]


def test_a_code_outside_its_required_value_set_is_named_with_the_value_set() -> None:
    issues = value_issues({"resourceType": "Patient", "gender": "woman"})
    assert [(i.code, i.expression) for i in issues] == [("code-invalid", ("Patient.gender",))]
    assert "'woman'" in issues[0].diagnostics
    assert "http://hl7.org/fhir/ValueSet/administrative-gender" in issues[0].diagnostics
    assert "female, male, other, unknown" in issues[0].diagnostics
    assert value_issues({"resourceType": "Patient", "gender": "female"}) == []


def test_datatype_bindings_are_checked_wherever_the_datatype_occurs() -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "valueQuantity": {"value": 1, "comparator": "~"},
        "referenceRange": [{"low": {"value": 1, "comparator": "<"}}],
        "extension": [
            {"url": "http://example.org/a", "valueContactPoint": {"system": "pigeon"}},
            {"url": "http://example.org/b", "valueHumanName": {"use": "official"}},
        ],
        "text": {"status": "made-up", "div": "<div>x</div>"},
    }
    assert expressions(observation) == [
        ("code-invalid", "Observation.valueQuantity.comparator"),
        ("code-invalid", "Observation.extension[0].valueContactPoint.system"),
        ("code-invalid", "Observation.text.status"),
    ]


def test_repeating_codes_backbone_elements_and_content_references() -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "status": "active",
        "subjectType": ["Patient", "Dragon"],
        "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "essay"}]}],
    }
    assert expressions(questionnaire) == [
        ("code-invalid", "Questionnaire.subjectType[1]"),
        ("code-invalid", "Questionnaire.item[0].item[0].type"),
    ]


def test_a_required_codeable_concept_needs_one_coding_from_the_value_set() -> None:
    system = "http://terminology.hl7.org/CodeSystem/condition-clinical"

    def condition(clinical_status: dict[str, Any]) -> dict[str, Any]:
        return {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/1"},
            "clinicalStatus": clinical_status,
        }

    good = {
        "coding": [
            {"system": "http://example.org", "code": "x"},
            {"system": system, "code": "active"},
        ]
    }
    assert value_issues(condition(good)) == []
    for bad in (
        {"text": "active"},  # text alone does not conform to a required binding
        {"coding": [{"code": "active"}]},  # a code without its system is not from the value set
        {"coding": [{"system": "http://example.org", "code": "active"}]},
        {"coding": [{"system": system, "code": "dormant"}]},
    ):
        assert expressions(condition(bad)) == [("code-invalid", "Condition.clinicalStatus")]


def test_contained_and_bundled_resources_are_checked_with_their_own_type() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "gender": "F"}},
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "x"},
                    "contained": [
                        {"resourceType": "Patient", "id": "p", "birthDate": "2023-02-29"}
                    ],
                    "subject": {"reference": "#p"},
                }
            },
        ],
    }
    assert expressions(bundle) == [
        ("code-invalid", "Bundle.entry[0].resource.gender"),
        ("value", "Bundle.entry[1].resource.contained[0].birthDate"),
    ]


def test_dates_are_checked_in_choices_extensions_and_primitive_extensions() -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "effectiveDateTime": "2023-02-29T10:00:00Z",
        "issued": "2023-06-31T10:00:00Z",
        "extension": [{"url": "http://example.org/a", "valueDate": "1900-02-29"}],
        "_status": {
            "extension": [{"url": "http://example.org/b", "valuePeriod": {"end": "2023-09-31"}}]
        },
    }
    assert expressions(observation) == [
        ("value", "Observation.effectiveDateTime"),
        ("value", "Observation.issued"),
        ("value", "Observation.extension[0].valueDate"),
        ("value", "Observation._status.extension[0].valuePeriod.end"),
    ]


def test_values_of_the_wrong_json_type_are_left_to_the_structural_check() -> None:
    patient = {"resourceType": "Patient", "gender": 3, "birthDate": ["x"], "telecom": "x"}
    assert value_issues(patient) == []
    assert value_issues({"resourceType": "NotAType", "gender": "x"}) == []


def test_the_generated_table_is_consistent() -> None:
    data = load("bindings.json")
    assert len(data["bindings"]) > 300
    for path, (url, kind) in data["bindings"].items():
        assert data["valueSets"][url], path
        assert kind in ("code", "Coding", "CodeableConcept")
    assert not set(data["bindings"]) & set(data["skipped"])
    assert "Patient.gender" in data["bindings"]
    assert "Attachment.contentType" in data["skipped"]  # MIME types: an external code system


def test_the_committed_table_is_what_the_generator_makes(fhir_examples: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts/generate_bindings.py")
    assert spec is not None
    assert spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generated = json.loads(json.dumps(generator.generate(fhir_examples)))
    assert generated == load("bindings.json")


def test_no_official_example_breaks_a_binding_or_the_calendar(fhir_examples: Path) -> None:
    """All 5,306 files of the package, definitions included (the round trip test sends the
    others over HTTP): every code in its value set, every date a real one."""
    checked = 0
    for path in sorted(fhir_examples.glob("*.json")):
        resource = json.loads(path.read_bytes())
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            assert value_issues(resource) == [], path.name
            checked += 1
    assert checked > 5_000
