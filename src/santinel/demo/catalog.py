"""What the synthetic patients can have: conditions, their usual treatments, vital signs and labs.

Codes are real (SNOMED CT for conditions, ATC for medicines, LOINC for observations, UCUM units) so
that searches and clients behave as with real data. Prevalences grow with age the way the common
chronic diseases do; they are rough, not epidemiology.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConditionSpec:
    key: str
    snomed: str
    display: str  # SNOMED CT preferred term
    text: str  # how a French clinician writes it
    base: float  # probability at `start` age
    slope: float  # added per year after `start`
    start: int
    cap: float
    female_factor: float = 1.0
    treatments: tuple[tuple[str, ...], ...] = ()  # one medicine from each group

    def probability(self, age: int, female: bool) -> float:
        p = self.base + self.slope * max(0, age - self.start) if age >= self.start else 0.0
        return min(self.cap, p * (self.female_factor if female else 1.0))


CONDITIONS = (
    ConditionSpec(
        "hypertension", "38341003", "Hypertensive disorder", "Hypertension artérielle",
        0.03, 0.008, 25, 0.65, 1.0, (("amlodipine", "ramipril", "indapamide", "perindopril"),),
    ),
    ConditionSpec(
        "diabetes", "44054006", "Type 2 diabetes mellitus", "Diabète de type 2",
        0.01, 0.003, 30, 0.2, 0.8, (("metformin",),),
    ),
    ConditionSpec(
        "hyperlipidemia", "55822004", "Hyperlipidemia", "Hypercholestérolémie",
        0.03, 0.005, 30, 0.35, 1.0, (("atorvastatin", "rosuvastatin"),),
    ),
    ConditionSpec(
        "asthma", "195967001", "Asthma", "Asthme",
        0.07, 0.0, 0, 0.07, 1.1, (("salbutamol",), ("budesonide",)),
    ),
    ConditionSpec(
        "copd", "13645005", "Chronic obstructive lung disease", "BPCO",
        0.01, 0.002, 40, 0.1, 0.8, (("tiotropium",), ("salbutamol",)),
    ),
    ConditionSpec(
        "atrial_fibrillation", "49436004", "Atrial fibrillation", "Fibrillation atriale",
        0.01, 0.004, 60, 0.15, 0.8, (("apixaban",), ("bisoprolol",)),
    ),
    ConditionSpec(
        "hypothyroidism", "40930008", "Hypothyroidism", "Hypothyroïdie",
        0.02, 0.0005, 20, 0.06, 2.5, (("levothyroxine",),),
    ),
    ConditionSpec(
        "ckd", "709044004", "Chronic kidney disease", "Maladie rénale chronique",
        0.005, 0.003, 50, 0.15,
    ),
    ConditionSpec("obesity", "414916001", "Obesity", "Obésité", 0.1, 0.001, 18, 0.2),
    ConditionSpec(
        "depression", "370143000", "Major depressive disorder", "Épisode dépressif caractérisé",
        0.07, 0.0, 18, 0.07, 1.6, (("sertraline", "escitalopram"),),
    ),
    ConditionSpec(
        "osteoarthritis", "396275006", "Osteoarthritis", "Arthrose",
        0.02, 0.008, 45, 0.4, 1.2, (("paracetamol",),),
    ),
    ConditionSpec(
        "gerd", "235595009", "Gastroesophageal reflux disease", "Reflux gastro-œsophagien",
        0.08, 0.0, 18, 0.08, 1.0, (("omeprazole", "esomeprazole"),),
    ),
    ConditionSpec(
        "migraine", "37796009", "Migraine", "Migraine",
        0.05, 0.0, 12, 0.05, 2.5, (("sumatriptan",),),
    ),
    ConditionSpec(
        "heart_failure", "84114007", "Heart failure", "Insuffisance cardiaque",
        0.005, 0.003, 65, 0.12, 0.9, (("furosemide",), ("bisoprolol",)),
    ),
    ConditionSpec(
        "allergic_rhinitis", "61582004", "Allergic rhinitis", "Rhinite allergique",
        0.12, 0.0, 5, 0.12, 1.0, (("cetirizine",),),
    ),
)  # fmt: skip


@dataclass(frozen=True)
class MedicationSpec:
    atc: str
    name: str  # international non-proprietary name, as the ATC index spells it
    label: str  # prescription line (French)
    dose: float
    dose_unit: str  # UCUM code
    per_day: int
    instructions: str
    route: str = "oral"
    as_needed: bool = False


MEDICATIONS = {
    "amlodipine": MedicationSpec("C08CA01", "amlodipine", "Amlodipine 5 mg, comprimé", 5, "mg", 1,
                                 "1 comprimé par jour"),
    "ramipril": MedicationSpec("C09AA05", "ramipril", "Ramipril 5 mg, comprimé", 5, "mg", 1,
                               "1 comprimé le matin"),
    "perindopril": MedicationSpec("C09AA04", "perindopril", "Périndopril 4 mg, comprimé", 4, "mg",
                                  1, "1 comprimé le matin"),
    "indapamide": MedicationSpec("C03BA11", "indapamide", "Indapamide 1,5 mg LP, comprimé", 1.5,
                                 "mg", 1, "1 comprimé le matin"),
    "metformin": MedicationSpec("A10BA02", "metformin", "Metformine 1000 mg, comprimé", 1000,
                                "mg", 2, "1 comprimé matin et soir au cours des repas"),
    "atorvastatin": MedicationSpec("C10AA05", "atorvastatin", "Atorvastatine 20 mg, comprimé", 20,
                                   "mg", 1, "1 comprimé le soir"),
    "rosuvastatin": MedicationSpec("C10AA07", "rosuvastatin", "Rosuvastatine 10 mg, comprimé", 10,
                                   "mg", 1, "1 comprimé le soir"),
    "salbutamol": MedicationSpec("R03AC02", "salbutamol",
                                 "Salbutamol 100 µg/dose, suspension pour inhalation", 200, "ug",
                                 4, "2 bouffées en cas de gêne respiratoire", "inhalation", True),
    "budesonide": MedicationSpec("R03BA02", "budesonide",
                                 "Budésonide 200 µg/dose, poudre pour inhalation", 200, "ug", 2,
                                 "1 inhalation matin et soir", "inhalation"),
    "tiotropium": MedicationSpec("R03BB04", "tiotropium",
                                 "Tiotropium 18 µg, poudre pour inhalation en gélule", 18, "ug",
                                 1, "1 inhalation par jour", "inhalation"),
    "apixaban": MedicationSpec("B01AF02", "apixaban", "Apixaban 5 mg, comprimé", 5, "mg", 2,
                               "1 comprimé matin et soir"),
    "bisoprolol": MedicationSpec("C07AB07", "bisoprolol", "Bisoprolol 2,5 mg, comprimé", 2.5, "mg",
                                 1, "1 comprimé le matin"),
    "levothyroxine": MedicationSpec("H03AA01", "levothyroxine sodium",
                                    "Lévothyroxine 75 µg, comprimé", 75, "ug", 1,
                                    "1 comprimé le matin à jeun"),
    "sertraline": MedicationSpec("N06AB06", "sertraline", "Sertraline 50 mg, gélule", 50, "mg", 1,
                                 "1 gélule par jour"),
    "escitalopram": MedicationSpec("N06AB10", "escitalopram", "Escitalopram 10 mg, comprimé", 10,
                                   "mg", 1, "1 comprimé par jour"),
    "paracetamol": MedicationSpec("N02BE01", "paracetamol", "Paracétamol 1 g, comprimé", 1000,
                                  "mg", 3, "1 comprimé jusqu'à 3 fois par jour si douleur",
                                  as_needed=True),
    "omeprazole": MedicationSpec("A02BC01", "omeprazole", "Oméprazole 20 mg, gélule", 20, "mg", 1,
                                 "1 gélule le matin à jeun"),
    "esomeprazole": MedicationSpec("A02BC05", "esomeprazole", "Ésoméprazole 20 mg, comprimé", 20,
                                   "mg", 1, "1 comprimé le matin"),
    "sumatriptan": MedicationSpec("N02CC01", "sumatriptan", "Sumatriptan 50 mg, comprimé", 50,
                                  "mg", 2, "1 comprimé dès le début de la crise", as_needed=True),
    "furosemide": MedicationSpec("C03CA01", "furosemide", "Furosémide 40 mg, comprimé", 40, "mg",
                                 1, "1 comprimé le matin"),
    "cetirizine": MedicationSpec("R06AE07", "cetirizine", "Cétirizine 10 mg, comprimé", 10, "mg",
                                 1, "1 comprimé le soir"),
}  # fmt: skip

ROUTES = {
    "oral": ("26643006", "Oral route"),
    "inhalation": ("447694001", "Respiratory tract route"),
}


@dataclass(frozen=True)
class LabSpec:
    """A lab test; ranges are (male, female) pairs of (low, high)."""

    key: str
    loinc: str
    display: str
    unit: str  # UCUM code
    decimals: int
    healthy: tuple[tuple[float, float], tuple[float, float]]
    reference: tuple[tuple[float | None, float | None], tuple[float | None, float | None]]
    disease: str | None = None  # a condition that moves the value out of range
    sick: tuple[float, float] = (0.0, 0.0)


def _same(low: float, high: float) -> tuple[tuple[float, float], tuple[float, float]]:
    return (low, high), (low, high)


LABS = (
    LabSpec("glucose", "2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 0,
            _same(72, 99), _same(70, 100), "diabetes", (110, 230)),
    LabSpec("hba1c", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 1,
            _same(4.6, 5.6), _same(4.0, 5.6), "diabetes", (6.2, 9.5)),
    LabSpec("hemoglobin", "718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 1,
            ((13.5, 16.8), (12.0, 15.2)), ((13.5, 17.5), (12.0, 16.0)), "ckd", (9.5, 12.0)),
    LabSpec("creatinine", "2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 2,
            ((0.7, 1.2), (0.55, 1.0)), ((0.7, 1.3), (0.6, 1.1)), "ckd", (1.4, 3.2)),
    LabSpec("cholesterol", "2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 0,
            _same(140, 215), ((None, 200), (None, 200)), "hyperlipidemia", (220, 310)),
    LabSpec("potassium", "2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 1,
            _same(3.6, 5.0), _same(3.5, 5.1), "ckd", (4.8, 5.9)),
    LabSpec("sodium", "2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 0,
            _same(136, 144), _same(136, 145), "heart_failure", (129, 137)),
    LabSpec("tsh", "3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 2,
            _same(0.5, 3.8), _same(0.4, 4.0), "hypothyroidism", (4.5, 12.0)),
)  # fmt: skip

# Vital signs (R4 vital signs profile): LOINC code, display, UCUM unit and the unit shown.
HEART_RATE = ("8867-4", "Heart rate", "/min", "beats/minute")
RESPIRATORY_RATE = ("9279-1", "Respiratory rate", "/min", "breaths/minute")
BODY_TEMPERATURE = ("8310-5", "Body temperature", "Cel", "°C")
BODY_WEIGHT = ("29463-7", "Body weight", "kg", "kg")
BODY_HEIGHT = ("8302-2", "Body height", "cm", "cm")
BMI = ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", "kg/m2")
SPO2 = ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", "%")
SPO2_GENERIC = ("2708-6", "Oxygen saturation in Arterial blood")
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
SYSTOLIC = ("8480-6", "Systolic blood pressure", "mm[Hg]", "mmHg")
DIASTOLIC = ("8462-4", "Diastolic blood pressure", "mm[Hg]", "mmHg")

# Encounter types (SNOMED CT procedures) by class.
AMBULATORY_TYPES = (
    ("185349003", "Encounter for check up", "Consultation de suivi"),
    ("11429006", "Consultation", "Consultation"),
    ("390906007", "Follow-up encounter", "Consultation de contrôle"),
)
INPATIENT_TYPES = (
    ("32485007", "Hospital admission", "Hospitalisation"),
    ("183452005", "Emergency hospital admission", "Hospitalisation en urgence"),
)

SPECIALTIES = (
    *("Médecine générale",) * 6,
    "Cardiologie",
    "Endocrinologie",
    "Pneumologie",
    "Néphrologie",
    "Gériatrie",
    "Médecine interne",
)
