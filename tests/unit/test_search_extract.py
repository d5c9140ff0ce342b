"""Index values extracted from resources, per parameter type (R4 `search.html`)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from santinel.fhir.search.convert_date import DATE_MAX, DATE_MIN
from santinel.fhir.search.convert_number import precision_range
from santinel.fhir.search.extract import extract, precompile
from santinel.fhir.search.values import (
    CompositeValue,
    DateValue,
    ExtractedValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
)

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
NIR = "urn:oid:1.2.250.1.213.1.4.8"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def values(resource: dict[str, Any], param: str) -> list[ExtractedValue]:
    return [value for value in extract(resource) if value.param == param]


def micros(year: int, month: int = 1, day: int = 1, hour: int = 0, minute: int = 0) -> int:
    """Microseconds since the epoch of a UTC moment."""
    moment = datetime(year, month, day, hour, minute, tzinfo=UTC)
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000


PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {
        "versionId": "3",
        "lastUpdated": "2024-05-01T10:00:00.123Z",
        "profile": ["http://example.org/StructureDefinition/fr-patient"],
        "source": "http://example.org/feed#42",
        "tag": [{"system": "http://example.org/tags", "code": "vip", "display": "V.I.P."}],
        "security": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
        ],
    },
    "identifier": [
        {
            "type": {"coding": [{"system": V2_0203, "code": "NH"}], "text": "N° de sécu"},
            "system": NIR,
            "value": "184127512345678",
        }
    ],
    "name": [{"family": "Durand-Lefèvre", "given": ["Élodie", "Marie  Anne"], "prefix": ["Mme"]}],
    "telecom": [
        {"system": "phone", "value": "+33 1 23 45 67 89"},
        {"system": "email", "value": "elodie@example.org"},
    ],
    "gender": "female",
    "birthDate": "1974-12",
    "address": [{"line": ["3 rue de la Paix"], "city": "Saint-Étienne", "postalCode": "42000"}],
    "managingOrganization": {"reference": "Organization/o1"},
}


def test_human_name_parts_are_normalized() -> None:
    names = values(PATIENT, "name")
    assert StringValue("name", "elodie", "Élodie") in names
    assert StringValue("name", "marie anne", "Marie  Anne") in names
    assert StringValue("name", "durand-lefevre", "Durand-Lefèvre") in names
    assert StringValue("name", "mme", "Mme") in names
    assert values(PATIENT, "given") == [
        StringValue("given", "elodie", "Élodie"),
        StringValue("given", "marie anne", "Marie  Anne"),
    ]
    assert values(PATIENT, "family") == [StringValue("family", "durand-lefevre", "Durand-Lefèvre")]


def test_address_parts() -> None:
    address = values(PATIENT, "address")
    assert StringValue("address", "saint-etienne", "Saint-Étienne") in address
    assert StringValue("address", "3 rue de la paix", "3 rue de la Paix") in address
    assert values(PATIENT, "address-city") == [
        StringValue("address-city", "saint-etienne", "Saint-Étienne")
    ]
    assert values(PATIENT, "address-postalcode") == [
        StringValue("address-postalcode", "42000", "42000")
    ]


def test_identifier_and_of_type() -> None:
    assert values(PATIENT, "identifier") == [
        TokenValue("identifier", NIR, "184127512345678", "n° de secu")
    ]
    assert values(PATIENT, "identifier:of-type") == [
        TokenValue("identifier:of-type", V2_0203, "NH|184127512345678")
    ]


def test_contact_points_and_codes() -> None:
    assert values(PATIENT, "phone") == [TokenValue("phone", "phone", "+33 1 23 45 67 89")]
    assert values(PATIENT, "email") == [TokenValue("email", "email", "elodie@example.org")]
    assert len(values(PATIENT, "telecom")) == 2
    assert values(PATIENT, "gender") == [TokenValue("gender", None, "female")]
    # The official expression `deceased.exists() and deceased != false` is false when absent.
    assert values(PATIENT, "deceased") == [TokenValue("deceased", None, "false")]


def test_birth_date_precision_is_the_whole_month() -> None:
    assert values(PATIENT, "birthdate") == [
        DateValue("birthdate", micros(1974, 12, 1), micros(1975, 1, 1) - 1)
    ]


def test_meta_parameters() -> None:
    last_updated = values(PATIENT, "_lastUpdated")
    start = micros(2024, 5, 1, 10) + 123_000
    assert last_updated == [DateValue("_lastUpdated", start, start + 999)]
    assert values(PATIENT, "_id") == [TokenValue("_id", None, "p1")]
    assert values(PATIENT, "_profile") == [
        UriValue("_profile", "http://example.org/StructureDefinition/fr-patient")
    ]
    assert values(PATIENT, "_source") == [UriValue("_source", "http://example.org/feed#42")]
    assert values(PATIENT, "_tag") == [
        TokenValue("_tag", "http://example.org/tags", "vip", "v.i.p.")
    ]
    assert values(PATIENT, "_security") == [
        TokenValue("_security", "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R")
    ]


def test_reference_to_organization() -> None:
    assert values(PATIENT, "organization") == [
        ReferenceValue("organization", "Organization", "o1", "Organization/o1")
    ]


def test_extraction_does_not_change_the_resource() -> None:
    before = copy.deepcopy(PATIENT)
    extract(PATIENT)
    assert before == PATIENT


def observation(**elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {
            "coding": [{"system": LOINC, "code": "2345-7", "display": "Glucose"}],
            "text": "Glycémie",
        },
        **elements,
    }


def test_codeable_concept_codings_and_text() -> None:
    assert values(observation(), "code") == [
        TokenValue("code", LOINC, "2345-7", "glucose"),
        TokenValue("code", None, None, "glycemie"),
    ]
    assert values(observation(), "status") == [TokenValue("status", None, "final")]


def test_quantity_keeps_the_precision_of_decimals() -> None:
    text = json.dumps(observation())[:-1] + (
        ', "valueQuantity": {"value": 5.40, "unit": "mmol/L", "system": "http://unitsofmeasure.org",'
        ' "code": "mmol/L"}}'
    )
    resource = json.loads(text, parse_float=Decimal)
    [value] = values(resource, "value-quantity")
    assert value == QuantityValue(
        "value-quantity", 5.4, pytest.approx(5.395), pytest.approx(5.405), UCUM, "mmol/L", "mmol/L"
    )
    # Parsed as a float (orjson), 5.40 reads 5.4: one decimal, so [5.35, 5.45].
    floats = json.loads(text)
    [value] = values(floats, "value-quantity")
    assert (value.low, value.high) == (pytest.approx(5.35), pytest.approx(5.45))


def test_precision_ranges() -> None:
    assert precision_range(100) == (100.0, 99.5, 100.5)
    assert precision_range(Decimal("1.50")) == (1.5, 1.495, 1.505)
    assert precision_range(Decimal("1E+2")) == (100.0, 50.0, 150.0)
    assert precision_range(True) is None
    assert precision_range("12") is None


def test_choice_types() -> None:
    concept = observation(
        valueCodeableConcept={"coding": [{"system": "http://snomed.info/sct", "code": "260385009"}]}
    )
    assert values(concept, "value-concept") == [
        TokenValue("value-concept", "http://snomed.info/sct", "260385009")
    ]
    assert values(concept, "value-quantity") == []
    text = observation(valueString="Trace de sang")
    assert values(text, "value-string") == [
        StringValue("value-string", "trace de sang", "Trace de sang")
    ]
    dated = observation(valueDateTime="2024-02-29", effectivePeriod={"start": "2024-02-01"})
    assert values(dated, "value-date") == [
        DateValue("value-date", micros(2024, 2, 29), micros(2024, 3, 1) - 1)
    ]
    assert values(dated, "date") == [DateValue("date", micros(2024, 2, 1), DATE_MAX)]
    closed = observation(effectivePeriod={"end": "2024"})
    assert values(closed, "date") == [DateValue("date", DATE_MIN, micros(2025, 1, 1) - 1)]


def test_references() -> None:
    versioned = observation(subject={"reference": "Patient/123/_history/2"})
    assert values(versioned, "subject") == [
        ReferenceValue("subject", "Patient", "123", "Patient/123/_history/2")
    ]
    assert values(versioned, "patient") == [
        ReferenceValue("patient", "Patient", "123", "Patient/123/_history/2")
    ]
    absolute = observation(subject={"reference": "https://other.example/fhir/Patient/9"})
    assert values(absolute, "patient") == [
        ReferenceValue("patient", "Patient", "9", "https://other.example/fhir/Patient/9")
    ]
    group = observation(subject={"reference": "Group/g1"})
    assert values(group, "subject") == [ReferenceValue("subject", "Group", "g1", "Group/g1")]
    assert values(group, "patient") == []


def test_references_without_a_literal_type() -> None:
    for literal in ("urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0", "#p1", "Unknown/1"):
        resource = observation(subject={"reference": literal})
        assert values(resource, "subject") == [ReferenceValue("subject", None, None, literal)]
        assert values(resource, "patient") == []


def test_logical_references_give_identifier_tokens() -> None:
    resource = observation(
        subject={"type": "Patient", "identifier": {"system": NIR, "value": "2840"}}
    )
    assert values(resource, "subject") == []
    assert values(resource, "subject:identifier") == [TokenValue("subject:identifier", NIR, "2840")]
    assert values(resource, "patient:identifier") == [TokenValue("patient:identifier", NIR, "2840")]


BLOOD_PRESSURE = observation(
    code={"coding": [{"system": LOINC, "code": "85354-9"}]},
    component=[
        {
            "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
            "valueQuantity": {"value": 107, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        },
        {
            "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
            "valueQuantity": {"value": 60, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        },
        {"code": {"coding": [{"system": LOINC, "code": "8478-0"}]}},  # no value: no composite
    ],
)


def test_composite_pairs_come_from_the_same_component() -> None:
    composites = values(BLOOD_PRESSURE, "component-code-value-quantity")
    assert composites == [
        CompositeValue(
            "component-code-value-quantity",
            (
                TokenValue("component-code", LOINC, "8480-6"),
                QuantityValue(
                    "component-value-quantity", 107.0, 106.5, 107.5, UCUM, "mm[Hg]", "mmHg"
                ),
            ),
        ),
        CompositeValue(
            "component-code-value-quantity",
            (
                TokenValue("component-code", LOINC, "8462-4"),
                QuantityValue("component-value-quantity", 60.0, 59.5, 60.5, UCUM, "mm[Hg]", "mmHg"),
            ),
        ),
    ]
    assert values(BLOOD_PRESSURE, "code-value-quantity") == []  # the panel itself has no value
    assert len(values(BLOOD_PRESSURE, "combo-code-value-quantity")) == 2
    assert len(values(BLOOD_PRESSURE, "component-code")) == 3


def test_composite_with_a_resource_variable() -> None:
    sequence = {
        "resourceType": "MolecularSequence",
        "type": "dna",
        "coordinateSystem": 0,
        "referenceSeq": {"chromosome": {"coding": [{"system": "http://x", "code": "1"}]}},
        "variant": [{"start": 10, "end": 12}],
    }
    [composite] = values(sequence, "chromosome-variant-coordinate")
    assert isinstance(composite, CompositeValue)
    assert [v.param for v in composite.components] == ["chromosome", "variant-start", "variant-end"]


def test_number_money_range_and_timing() -> None:
    risk = {
        "resourceType": "RiskAssessment",
        "status": "final",
        "subject": {"reference": "Patient/1"},
        "prediction": [
            {"probabilityDecimal": Decimal("0.25")},
            {"probabilityRange": {"low": {"value": 5}}},
        ],
    }
    assert values(risk, "probability") == [
        NumberValue("probability", 0.25, 0.245, 0.255),
        NumberValue("probability", 5.0, 4.5, float("inf")),
    ]
    invoice = {
        "resourceType": "Invoice",
        "status": "issued",
        "totalGross": {"value": 48, "currency": "EUR"},
    }
    assert values(invoice, "totalgross") == [
        QuantityValue("totalgross", 48.0, 47.5, 48.5, "urn:iso:std:iso:4217", "EUR", "EUR")
    ]
    prescription = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/1"},
        "dosageInstruction": [{"timing": {"event": ["2024-01-03", "2024-01-01"]}}],
    }
    assert values(prescription, "date") == [
        DateValue("date", micros(2024, 1, 3), micros(2024, 1, 4) - 1),
        DateValue("date", micros(2024, 1, 1), micros(2024, 1, 2) - 1),
    ]


def test_special_parameters_give_nothing() -> None:
    location = {"resourceType": "Location", "position": {"longitude": 2.35, "latitude": 48.85}}
    assert values(location, "near") == []


def test_invalid_dates_and_unknown_types_are_skipped() -> None:
    assert values(observation(effectiveDateTime="someday"), "date") == []
    assert extract({"resourceType": "NoSuchType", "id": "1"}) == []
    assert extract({"id": "1"}) == []


def test_precompile() -> None:
    assert precompile(["Patient", "Observation"]) > 50


def test_timing_counts_for_its_outer_limits() -> None:
    timing = {
        "event": ["2024-03-05T08:00:00Z"],
        "repeat": {"boundsPeriod": {"start": "2024-03-01", "end": "2024-03-31"}, "frequency": 2},
    }
    plan = {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/1"},
        "activity": [{"detail": {"status": "scheduled", "scheduledTiming": timing}}],
    }
    assert values(plan, "activity-date") == [
        DateValue("activity-date", micros(2024, 3, 1), micros(2024, 4, 1) - 1)
    ]
