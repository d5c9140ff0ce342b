"""Deterministic synthetic data: a shared directory, then one group of resources per patient.

Every patient is drawn from its own `random.Random`, seeded with the run's seed and the patient's
index, never from the global generator: patient 17 of seed 42 is the same whether 20 or 20,000
patients are generated, and ids (`demo-<seed>-p<index>-…`) are stable, so loading the same seed
twice updates resources instead of duplicating them. Dates are relative to a fixed reference day
(not today) so that a seed gives the same bytes whenever it runs.

Generation is pure (no I/O) and lazy: `generate` yields one patient's group at a time.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from santinel.demo import catalog, clinical, people, vitals
from santinel.demo.catalog import ConditionSpec, LabSpec
from santinel.demo.chart import Chart, organization_id, practitioner_id
from santinel.demo.clinical import Visit
from santinel.demo.elements import JsonObject

REFERENCE_DATE = date(2025, 6, 30)
ORGANIZATIONS = 8
PRACTITIONERS = 40
HISTORY_YEARS = 5
# Adult age brackets (low, high, weight): roughly the French adult population.
AGE_BRACKETS = ((18, 29, 18), (30, 44, 24), (45, 59, 25), (60, 74, 21), (75, 95, 12))


def generate(
    patients: int, seed: int, *, today: date = REFERENCE_DATE
) -> Iterator[list[JsonObject]]:
    """The directory (organizations and practitioners) first, then each patient's group."""
    yield directory(seed)
    for index in range(patients):
        yield patient_group(seed, index, today=today)


def directory(seed: int) -> list[JsonObject]:
    """Organizations and practitioners shared by all patients of a seed."""
    rng = random.Random(f"santinel-demo:{seed}:directory")
    base = rng.randrange(1_000_000)
    organizations = [
        people.organization(rng, organization_id(seed, n), base + n, kind=n)
        for n in range(ORGANIZATIONS)
    ]
    practitioners = [
        people.practitioner(rng, practitioner_id(seed, n), base * 10 + n)
        for n in range(PRACTITIONERS)
    ]
    return organizations + practitioners


def inpatient_organizations() -> list[int]:
    kinds = people.ORGANIZATION_KINDS
    return [n for n in range(ORGANIZATIONS) if kinds[n % len(kinds)][1]]


def patient_group(seed: int, index: int, *, today: date = REFERENCE_DATE) -> list[JsonObject]:
    """Patient `index` of `seed` with its encounters, observations, conditions and prescriptions."""
    rng = random.Random(f"santinel-demo:{seed}:patient:{index}")
    chart = _new_chart(seed, index, rng, today)
    gp = rng.randrange(PRACTITIONERS)
    home_organization = rng.randrange(ORGANIZATIONS)
    mrn = f"{seed}{index + 1:08d}"
    chart.resources.append(
        people.patient(
            rng,
            chart.patient_id,
            chart.person,
            mrn,
            organization_id(seed, home_organization),
            practitioner_id(seed, gp),
        )
    )
    visits = _visits(chart, today, gp, home_organization)
    diagnosed_at = [
        0 if rng.random() < 0.6 else rng.randrange(len(visits)) for _ in chart.conditions
    ]
    prescribed: set[str] = set()
    for number, visit in enumerate(visits):
        _observe(chart, visit, first=number == 0)
        for spec, at in zip(chart.conditions, diagnosed_at, strict=True):
            if at == number:
                _diagnose(chart, visit, spec, prescribed)
    return chart.resources


def _new_chart(seed: int, index: int, rng: random.Random, today: date) -> Chart:
    gender = "female" if rng.random() < 0.515 else "male"
    low, high, _ = rng.choices(AGE_BRACKETS, weights=[b[2] for b in AGE_BRACKETS])[0]
    birth = today - timedelta(days=rng.randint(low, high) * 365 + rng.randint(0, 364))
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    person = people.draw_person(rng, gender, birth, age)
    female = gender == "female"
    conditions = [c for c in catalog.CONDITIONS if rng.random() < c.probability(age, female)]
    height = rng.gauss(163 if female else 176, 6.5)
    obese = any(c.key == "obesity" for c in conditions)
    bmi = rng.uniform(30, 38) if obese else min(29.5, max(18.6, rng.gauss(24.5, 3)))
    return Chart(seed, index, rng, person, conditions, round(height, 1), bmi)


def _visits(chart: Chart, today: date, gp: int, home_organization: int) -> list[Visit]:
    """Encounters spread over the last years of the patient's adult life, oldest first."""
    rng, age = chart.rng, chart.person.age
    adult = chart.person.birth_date + timedelta(days=18 * 366)
    first_day = max(today - timedelta(days=HISTORY_YEARS * 365), adult)
    span = max(1, (today - first_day).days - 10)
    count = 1 + rng.randint(0, 2) + min(3, len(chart.conditions))
    days = sorted(rng.randrange(span) for _ in range(count))
    hospitals = inpatient_organizations()
    visits = []
    for offset in days:
        inpatient = rng.random() < min(0.3, 0.06 + 0.004 * max(0, age - 55))
        start = datetime.combine(first_day + timedelta(days=offset), datetime.min.time())
        start += timedelta(hours=rng.randint(7, 17), minutes=5 * rng.randrange(12))
        if inpatient:
            end = start + timedelta(days=rng.randint(1, 9), hours=rng.randint(0, 6))
            organization, practitioner = rng.choice(hospitals), rng.randrange(PRACTITIONERS)
            kind = rng.choice(catalog.INPATIENT_TYPES)
        else:
            end = start + timedelta(minutes=rng.choice((15, 20, 20, 30, 45)))
            organization = home_organization
            practitioner = gp if rng.random() < 0.7 else rng.randrange(PRACTITIONERS)
            kind = rng.choice(catalog.AMBULATORY_TYPES)
        visit = Visit(
            chart.new_id("enc"),
            chart.patient_id,
            practitioner_id(chart.seed, practitioner),
            start,
            end,
        )
        chart.resources.append(
            clinical.encounter(visit, organization_id(chart.seed, organization), inpatient, kind)
        )
        visits.append(visit)
    return visits


def _observe(chart: Chart, visit: Visit, first: bool) -> None:
    """Vital signs at every visit, labs at most hospital stays and some consultations."""
    rng = chart.rng
    duration = visit.end - visit.start
    inpatient = duration > timedelta(hours=12)
    # Within the encounter's period: vitals early on, the lab sample a little later.
    at = visit.start + duration * rng.uniform(0.05, 0.3)
    at -= timedelta(microseconds=at.microsecond)
    chart.resources.extend(vitals.measure(chart, visit, at, first=first, inpatient=inpatient))
    if inpatient or rng.random() < 0.4:
        sampled = at + (visit.end - at) * rng.uniform(0, 0.5)
        _labs(chart, visit, sampled - timedelta(microseconds=sampled.microsecond))


def _labs(chart: Chart, visit: Visit, at: datetime) -> None:
    rng = chart.rng
    routine = [lab for lab in catalog.LABS if lab.key not in ("hba1c", "tsh")]
    chosen = rng.sample(routine, rng.randint(2, 4))
    chosen += [lab for lab in catalog.LABS if chart.has(lab.disease) and lab not in chosen]
    for spec in chosen:
        value = _lab_value(chart, spec)
        chart.resources.append(
            clinical.lab_result(
                chart.new_id("obs"), visit, at, spec, value, female=chart.person.female
            )
        )


def _lab_value(chart: Chart, spec: LabSpec) -> float:
    rng = chart.rng
    low, high = spec.healthy[1 if chart.person.female else 0]
    if chart.has(spec.disease) and rng.random() < 0.8:
        low, high = spec.sick
    value = round(rng.uniform(low, high), spec.decimals)
    return int(value) if spec.decimals == 0 else value


def _diagnose(chart: Chart, visit: Visit, spec: ConditionSpec, prescribed: set[str]) -> None:
    rng = chart.rng
    earliest = chart.person.birth_date + timedelta(days=max(spec.start, 5) * 366)
    latest = visit.start.date()
    onset_days = rng.randint(0, max(0, min(8 * 365, (latest - earliest).days)))
    onset = visit.start - timedelta(days=onset_days)
    condition_id = chart.new_id("cond")
    chart.resources.append(clinical.condition(condition_id, visit, spec, onset, visit.end))
    if not spec.treatments or rng.random() > 0.85:
        return
    for group in spec.treatments:
        name = rng.choice(group)
        if name in prescribed:
            continue
        prescribed.add(name)
        medicine = catalog.MEDICATIONS[name]
        chart.resources.append(
            clinical.medication_request(
                chart.new_id("med"), visit, medicine, condition_id, visit.end
            )
        )
