"""Vital signs taken at a visit, plausible for the patient's age, build and conditions.

Values follow the patient: blood pressure rises with age and hypertension, heart rate is faster and
irregular with atrial fibrillation, saturation is lower with COPD, weight stays near the patient's
own build, hospital stays add respiratory rate and sometimes a fever.
"""

from __future__ import annotations

from datetime import datetime

from santinel.demo import catalog, clinical
from santinel.demo.chart import Chart
from santinel.demo.clinical import Visit
from santinel.demo.elements import JsonObject


def measure(
    chart: Chart, visit: Visit, at: datetime, *, first: bool, inpatient: bool
) -> list[JsonObject]:
    rng, age = chart.rng, chart.person.age
    out = [
        clinical.vital_sign(chart.new_id("obs"), visit, at, catalog.HEART_RATE, _heart_rate(chart)),
        clinical.blood_pressure(chart.new_id("obs"), visit, at, *_blood_pressure(chart)),
    ]
    weight = round(chart.bmi * (chart.height_cm / 100) ** 2 + rng.gauss(0, 1.2), 1)
    out.append(clinical.vital_sign(chart.new_id("obs"), visit, at, catalog.BODY_WEIGHT, weight))
    if first:
        height = chart.height_cm
        out.append(clinical.vital_sign(chart.new_id("obs"), visit, at, catalog.BODY_HEIGHT, height))
    bmi = round(weight / (chart.height_cm / 100) ** 2, 1)
    out.append(clinical.vital_sign(chart.new_id("obs"), visit, at, catalog.BMI, bmi))
    breathing = chart.has("copd") or chart.has("asthma")
    if inpatient or breathing or rng.random() < 0.4:
        spo2 = round(rng.uniform(89, 95) if chart.has("copd") else min(100, rng.gauss(97.5, 1)))
        out.append(
            clinical.vital_sign(
                chart.new_id("obs"),
                visit,
                at,
                catalog.SPO2,
                spo2,
                extra_codings=(catalog.SPO2_GENERIC,),
            )
        )
    if inpatient or rng.random() < 0.4:
        fever = inpatient and rng.random() < 0.2
        celsius = round(rng.uniform(38.0, 39.6) if fever else rng.gauss(36.8, 0.25), 1)
        out.append(
            clinical.vital_sign(chart.new_id("obs"), visit, at, catalog.BODY_TEMPERATURE, celsius)
        )
    if inpatient:
        rate = round(rng.uniform(18, 26) if breathing or age > 80 else rng.uniform(12, 19))
        out.append(
            clinical.vital_sign(chart.new_id("obs"), visit, at, catalog.RESPIRATORY_RATE, rate)
        )
    return out


def _heart_rate(chart: Chart) -> int:
    rng = chart.rng
    if chart.has("atrial_fibrillation"):
        return round(min(140, max(55, rng.gauss(88, 14))))
    return round(min(110, max(50, rng.gauss(73, 8))))


def _blood_pressure(chart: Chart) -> tuple[int, int]:
    rng, age = chart.rng, chart.person.age
    hypertensive = chart.has("hypertension")
    systolic = 112 + 0.45 * max(0, age - 30) + rng.gauss(0, 9) + (16 if hypertensive else 0)
    diastolic = 70 + 0.12 * max(0, age - 30) + rng.gauss(0, 6) + (8 if hypertensive else 0)
    systolic = min(200, max(90, systolic))
    diastolic = min(115, max(50, min(diastolic, systolic - 25)))
    return round(systolic), round(diastolic)
