"""Small builders for FHIR data types, so resource builders read like the resources they make."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

JsonObject = dict[str, Any]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

TEST_DATA_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


def coding(system: str, code: str, display: str | None = None) -> JsonObject:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str, text: str | None = None) -> JsonObject:
    out: JsonObject = {"coding": [coding(system, code, display)]}
    if text:
        out["text"] = text
    return out


def reference(resource_type: str, resource_id: str, display: str | None = None) -> JsonObject:
    out = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        out["display"] = display
    return out


def quantity(value: float, unit: str, code: str | None = None) -> JsonObject:
    """A UCUM quantity; `unit` is the human form, `code` the UCUM code when they differ."""
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}


def date_time(moment: datetime) -> str:
    """A FHIR dateTime in UTC, to the second (generated times are naive UTC)."""
    return moment.isoformat(timespec="seconds") + "Z"  # isoformat: 10x faster than strftime


def day(value: date) -> str:
    return value.isoformat()


def resource(resource_type: str, resource_id: str, **elements: Any) -> JsonObject:
    """A resource with its type, id and meta first, then `elements` in order.

    Every generated resource is tagged as test data (v3 ActReason `HTEST`) so that nobody takes it
    for a real patient's record once it sits next to real data.
    """
    meta = {"tag": [coding(TEST_DATA_SYSTEM, "HTEST", "test health data")]}
    return {"resourceType": resource_type, "id": resource_id, "meta": meta, **elements}
