"""People and places: patients' demographics, practitioners and organizations.

Identity follows French practice: the official name is the birth name (the one the INS carries),
a married person may use another family name day to day (`use: usual`), the birth place is the
standard `patient-birthPlace` extension, and the NIR is consistent with sex, birth month and the
birth commune's department.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date

from santinel.demo import identifiers, names
from santinel.demo.catalog import SPECIALTIES
from santinel.demo.elements import JsonObject, concept, reference, resource
from santinel.demo.places import (
    COMMUNES,
    FOREIGN_COUNTRIES,
    STREET_NAMES,
    STREET_TYPES,
    Commune,
    Country,
)

FR_CORE_ID_TYPE = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
V2_ID_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
EMAIL_DOMAIN = "demo.santinel.example.org"

# First digit after +33 for landlines, by region (01 Île-de-France … 05 south-west).
_ZONES = {
    "1": "75 77 78 91 92 93 94 95",
    "2": "14 18 22 27 28 29 35 36 37 41 44 45 49 50 53 56 61 72 76 85",
    "3": "02 08 10 21 25 39 51 52 54 55 57 58 59 60 62 67 68 70 71 80 88 89 90",
    "4": "01 03 04 05 06 07 11 13 15 26 30 34 38 42 43 48 63 66 69 73 74 83 84",
}
PHONE_ZONE = {dep: zone for zone, deps in _ZONES.items() for dep in deps.split()}  # else "5"
MARITAL_STATUSES = (("S", "Never Married"), ("M", "Married"), ("D", "Divorced"), ("W", "Widowed"))


@dataclass(frozen=True)
class Person:
    """Who a patient is; everything else about them is drawn from this."""

    gender: str  # "male" | "female"
    birth_date: date
    age: int  # on the generation's reference date
    given: tuple[str, ...]
    family: str  # birth name
    used_family: str | None  # usual (e.g. married) name, when different
    home: Commune
    birth_place: Commune | Country
    nir: str

    @property
    def female(self) -> bool:
        return self.gender == "female"


def draw_person(rng: random.Random, gender: str, birth_date: date, age: int) -> Person:
    """Names of the birth decade, a home commune, a birth place (10 % abroad) and the NIR."""
    era = next(i for i, bound in enumerate(names.ERA_BOUNDS) if birth_date.year < bound)
    first_names = (names.FEMALE if gender == "female" else names.MALE)[era]
    given = tuple(dict.fromkeys(rng.choice(first_names) for _ in range(rng.choice((1, 2, 2, 3)))))
    family = rng.choice(names.FAMILY)
    married_name = gender == "female" and age > 25 and rng.random() < 0.55
    home = rng.choice(COMMUNES)
    birth_place: Commune | Country
    if rng.random() < 0.1:
        birth_place = rng.choice(FOREIGN_COUNTRIES)
        department, commune = "99", birth_place.insee
    else:
        birth_place = home if rng.random() < 0.35 else rng.choice(COMMUNES)
        department, commune = birth_place.department, birth_place.insee[2:]
    return Person(
        gender=gender,
        birth_date=birth_date,
        age=age,
        given=given,
        family=family,
        used_family=rng.choice(names.FAMILY) if married_name else None,
        home=home,
        birth_place=birth_place,
        nir=identifiers.nir(gender, birth_date, department, commune, rng.randint(1, 999)),
    )


def address(rng: random.Random, commune: Commune, use: str = "home") -> JsonObject:
    number = rng.randint(1, 180)
    suffix = rng.choice(("", "", "", "", "", "", " bis", " ter"))
    line = f"{number}{suffix} {rng.choice(STREET_TYPES)} {rng.choice(STREET_NAMES)}"
    return {
        "use": use,
        "type": "physical",
        "line": [line],
        "city": commune.name,
        "postalCode": rng.choice(commune.postal_codes),
        "country": "FR",
    }


def phone(rng: random.Random, department: str | None = None) -> str:
    """A French number in international form: a mobile (06/07) or a landline of the region."""
    lead = PHONE_ZONE.get(department, "5") if department else rng.choice("67")
    digits = [f"{rng.randint(0, 99):02d}" for _ in range(4)]
    return f"+33 {lead} {' '.join(digits)}"


def patient(
    rng: random.Random, rid: str, person: Person, mrn: str, organization: str, gp: str
) -> JsonObject:
    names_ = [{"use": "official", "family": person.family, "given": list(person.given)}]
    if person.used_family:
        names_.append({"use": "usual", "family": person.used_family, "given": [person.given[0]]})
    telecom = [{"system": "phone", "value": phone(rng), "use": "mobile"}]
    if rng.random() < 0.4:
        home = phone(rng, person.home.department)
        telecom.append({"system": "phone", "value": home, "use": "home"})
    marital = MARITAL_STATUSES[_marital_status(rng, person)]
    return resource(
        "Patient",
        rid,
        extension=[{"url": BIRTH_PLACE, "valueAddress": _birth_address(person.birth_place)}],
        identifier=[
            {
                "use": "official",
                "type": concept(FR_CORE_ID_TYPE, "INS-NIR", "NIR définitif"),
                "system": identifiers.INS_NIR_SYSTEM,
                "value": person.nir,
            },
            {
                "use": "usual",
                "type": concept(V2_ID_TYPE, "PI", "Patient internal identifier"),
                "system": identifiers.MRN_SYSTEM,
                "value": mrn,
            },
        ],
        active=True,
        name=names_,
        telecom=telecom,
        gender=person.gender,
        birthDate=person.birth_date.isoformat(),
        address=[address(rng, person.home)],
        maritalStatus=concept(MARITAL, *marital),
        communication=[
            {"language": concept("urn:ietf:bcp:47", "fr-FR", "French (France)"), "preferred": True}
        ],
        generalPractitioner=[reference("Practitioner", gp)],
        managingOrganization=reference("Organization", organization),
    )


def _marital_status(rng: random.Random, person: Person) -> int:
    """An index in MARITAL_STATUSES consistent with age and with a married name in use."""
    widowed = 3 if person.age > 60 else 1
    if person.used_family:
        return rng.choice((1, 1, 1, 1, 2, widowed))
    return 0 if person.age < 28 else rng.choice((0, 0, 1, 1, 2, widowed))


def _birth_address(place: Commune | Country) -> JsonObject:
    if isinstance(place, Country):
        return {"country": place.iso}
    return {"city": place.name, "postalCode": place.postal_codes[0], "country": "FR"}


def practitioner(rng: random.Random, rid: str, number: int) -> JsonObject:
    gender = rng.choice(("male", "female"))
    era = rng.choice((1, 1, 2))
    given = rng.choice((names.FEMALE if gender == "female" else names.MALE)[era])
    family = rng.choice(names.FAMILY)
    commune = rng.choice(COMMUNES)
    email = f"{_ascii(given)}.{_ascii(family)}@{EMAIL_DOMAIN}"
    return resource(
        "Practitioner",
        rid,
        identifier=[
            {
                "use": "official",
                "type": concept(FR_CORE_ID_TYPE, "RPPS", "N° RPPS"),
                "system": identifiers.RPPS_SYSTEM,
                "value": identifiers.rpps(number),
            }
        ],
        active=True,
        name=[{"use": "official", "family": family, "given": [given], "prefix": ["Dr"]}],
        telecom=[
            {"system": "phone", "value": phone(rng, commune.department), "use": "work"},
            {"system": "email", "value": email, "use": "work"},
        ],
        address=[address(rng, commune, use="work")],
        gender=gender,
        qualification=[{"code": {"text": rng.choice(SPECIALTIES)}}],
    )


# (name pattern, admits inpatients)
ORGANIZATION_KINDS = (
    ("Centre hospitalier de {city}", True),
    ("Centre hospitalier universitaire de {city}", True),
    ("Clinique du Parc - {city}", True),
    ("Maison de santé pluriprofessionnelle de {city}", False),
    ("Clinique Saint-Joseph - {city}", True),
    ("Centre de santé municipal de {city}", False),
)


def organization(rng: random.Random, rid: str, number: int, kind: int) -> JsonObject:
    commune = rng.choice(COMMUNES)
    name = ORGANIZATION_KINDS[kind % len(ORGANIZATION_KINDS)][0].format(city=commune.name)
    return resource(
        "Organization",
        rid,
        identifier=[
            {
                "use": "official",
                "system": identifiers.FINESS_SYSTEM,
                "value": identifiers.finess(commune.department, number),
            }
        ],
        active=True,
        type=[
            concept(
                "http://terminology.hl7.org/CodeSystem/organization-type",
                "prov",
                "Healthcare Provider",
            )
        ],
        name=name,
        telecom=[{"system": "phone", "value": phone(rng, commune.department), "use": "work"}],
        address=[address(rng, commune, use="work")],
    )


def _ascii(name: str) -> str:
    """`Éléonore Le Gall` → `eleonore-le-gall`, for e-mail addresses."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return plain.lower().replace(" ", "-").replace("'", "")
