"""Builders for the clinical resources of one patient: encounters, observations, conditions and
prescriptions. They only shape resources; what happens when is decided in `generator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from santinel.demo import catalog
from santinel.demo.catalog import ConditionSpec, LabSpec, MedicationSpec
from santinel.demo.elements import (
    ACT_CODE,
    ATC,
    INTERPRETATION,
    LOINC,
    OBSERVATION_CATEGORY,
    SNOMED,
    JsonObject,
    coding,
    concept,
    date_time,
    day,
    quantity,
    reference,
    resource,
)

CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
VITAL_SIGNS = [concept(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")]
LABORATORY = [concept(OBSERVATION_CATEGORY, "laboratory", "Laboratory")]
INTERPRETATIONS = {"H": "High", "L": "Low", "N": "Normal"}


@dataclass(frozen=True)
class Visit:
    """An encounter as the observations and prescriptions made during it see it."""

    encounter_id: str
    patient_id: str
    practitioner_id: str
    start: datetime
    end: datetime

    def subject(self) -> JsonObject:
        return reference("Patient", self.patient_id)

    def encounter(self) -> JsonObject:
        return reference("Encounter", self.encounter_id)


def encounter(
    visit: Visit, organization_id: str, inpatient: bool, kind: tuple[str, str, str]
) -> JsonObject:
    code, display, text = kind
    encounter_class = (
        coding(ACT_CODE, "IMP", "inpatient encounter")
        if inpatient
        else coding(ACT_CODE, "AMB", "ambulatory")
    )
    return resource(
        "Encounter",
        visit.encounter_id,
        status="finished",
        **{"class": encounter_class},
        type=[concept(SNOMED, code, display, text)],
        subject=visit.subject(),
        participant=[
            {
                "type": [concept(PARTICIPATION, "PPRF", "primary performer")],
                "individual": reference("Practitioner", visit.practitioner_id),
            }
        ],
        period={"start": date_time(visit.start), "end": date_time(visit.end)},
        serviceProvider=reference("Organization", organization_id),
    )


def vital_sign(
    oid: str,
    visit: Visit,
    at: datetime,
    code: tuple[str, ...],
    value: float,
    extra_codings: tuple[tuple[str, str], ...] = (),
) -> JsonObject:
    """One vital sign (R4 vital signs profile); `code` is (LOINC, display, UCUM, unit shown)."""
    loinc, display, ucum, unit = code
    codings = [coding(LOINC, loinc, display), *(coding(LOINC, c, d) for c, d in extra_codings)]
    return resource(
        "Observation",
        oid,
        status="final",
        category=VITAL_SIGNS,
        code={"coding": codings, "text": display},
        subject=visit.subject(),
        encounter=visit.encounter(),
        effectiveDateTime=date_time(at),
        performer=[reference("Practitioner", visit.practitioner_id)],
        valueQuantity=quantity(value, unit, ucum),
    )


def blood_pressure(
    oid: str, visit: Visit, at: datetime, systolic: int, diastolic: int
) -> JsonObject:
    """The blood pressure panel: no value of its own, one component per pressure."""
    panel_code, panel_display = catalog.BP_PANEL
    return resource(
        "Observation",
        oid,
        status="final",
        category=VITAL_SIGNS,
        code=concept(LOINC, panel_code, panel_display, "Blood pressure"),
        subject=visit.subject(),
        encounter=visit.encounter(),
        effectiveDateTime=date_time(at),
        performer=[reference("Practitioner", visit.practitioner_id)],
        component=[
            _component(catalog.SYSTOLIC, systolic),
            _component(catalog.DIASTOLIC, diastolic),
        ],
    )


def _component(code: tuple[str, str, str, str], value: int) -> JsonObject:
    loinc, display, ucum, unit = code
    return {"code": concept(LOINC, loinc, display), "valueQuantity": quantity(value, unit, ucum)}


def lab_result(
    oid: str, visit: Visit, at: datetime, spec: LabSpec, value: float, female: bool
) -> JsonObject:
    """A lab result with its sex-specific reference range and H/L/N interpretation."""
    low, high = spec.reference[1 if female else 0]
    reference_range: dict[str, Any] = {}
    if low is not None:
        reference_range["low"] = quantity(low, spec.unit)
    if high is not None:
        reference_range["high"] = quantity(high, spec.unit)
    flag = (
        "H"
        if high is not None and value > high
        else "L"
        if low is not None and value < low
        else "N"
    )
    return resource(
        "Observation",
        oid,
        status="final",
        category=LABORATORY,
        code=concept(LOINC, spec.loinc, spec.display),
        subject=visit.subject(),
        encounter=visit.encounter(),
        effectiveDateTime=date_time(at),
        issued=date_time(at + timedelta(hours=3)),
        valueQuantity=quantity(value, spec.unit),
        interpretation=[concept(INTERPRETATION, flag, INTERPRETATIONS[flag])],
        referenceRange=[reference_range],
    )


def condition(
    cid: str, visit: Visit, spec: ConditionSpec, onset: datetime, recorded: datetime
) -> JsonObject:
    return resource(
        "Condition",
        cid,
        clinicalStatus=concept(CONDITION_CLINICAL, "active", "Active"),
        verificationStatus=concept(CONDITION_VERIFICATION, "confirmed", "Confirmed"),
        category=[concept(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
        code=concept(SNOMED, spec.snomed, spec.display, spec.text),
        subject=visit.subject(),
        encounter=visit.encounter(),
        onsetDateTime=day(onset.date()),
        recordedDate=date_time(recorded),
        recorder=reference("Practitioner", visit.practitioner_id),
    )


def medication_request(
    mid: str, visit: Visit, medicine: MedicationSpec, condition_id: str, authored: datetime
) -> JsonObject:
    route_code, route_display = catalog.ROUTES[medicine.route]
    dosage: JsonObject = {
        "sequence": 1,
        "text": medicine.instructions,
        "timing": {"repeat": {"frequency": medicine.per_day, "period": 1, "periodUnit": "d"}},
    }
    if medicine.as_needed:
        dosage["asNeededBoolean"] = True
    dosage["route"] = concept(SNOMED, route_code, route_display)
    dose_unit = "µg" if medicine.dose_unit == "ug" else medicine.dose_unit
    dosage["doseAndRate"] = [
        {"doseQuantity": quantity(medicine.dose, dose_unit, medicine.dose_unit)}
    ]
    return resource(
        "MedicationRequest",
        mid,
        status="active",
        intent="order",
        medicationCodeableConcept=concept(ATC, medicine.atc, medicine.name, medicine.label),
        subject=visit.subject(),
        encounter=visit.encounter(),
        authoredOn=date_time(authored),
        requester=reference("Practitioner", visit.practitioner_id),
        reasonReference=[reference("Condition", condition_id)],
        dosageInstruction=[dosage],
    )
