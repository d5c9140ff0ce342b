"""Realistic synthetic French patients (deterministic for a seed), for the HTTP workloads.

Each Patient carries what a hospital system really sends: an INS-NIR identifier and a local
medical record number, official and usual names, telecom, a French address, marital status,
language, a contact person and a generated narrative. Typical size: 1.5-2 KB of JSON.
"""

from __future__ import annotations

import random
from typing import Any

FAMILY = (
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau",
    "Laurent", "Simon", "Michel", "Lefebvre", "Leroy", "Roux", "David", "Bertrand", "Morel",
    "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent",
    "Muller", "Lefèvre", "Faure", "André", "Mercier", "Blanc", "Guérin", "Boyer", "Garnier",
)  # fmt: skip
GIVEN_F = (
    "Léa", "Emma", "Chloé", "Manon", "Camille", "Inès", "Jade", "Louise", "Zoé", "Alice",
    "Juliette", "Lina", "Anaïs", "Sarah", "Élodie", "Nathalie", "Isabelle", "Sylvie", "Monique",
)  # fmt: skip
GIVEN_M = (
    "Lucas", "Hugo", "Louis", "Gabriel", "Arthur", "Jules", "Nathan", "Théo", "Raphaël", "Tom",
    "Paul", "Maxime", "Antoine", "Nicolas", "Julien", "Philippe", "Michel", "Alain", "Jean",
)  # fmt: skip
CITIES = (
    ("Paris", "75", "75011"), ("Lyon", "69", "69003"), ("Marseille", "13", "13008"),
    ("Toulouse", "31", "31000"), ("Nantes", "44", "44000"), ("Strasbourg", "67", "67000"),
    ("Bordeaux", "33", "33000"), ("Lille", "59", "59000"), ("Rennes", "35", "35000"),
    ("Montpellier", "34", "34000"), ("Nice", "06", "06000"), ("Grenoble", "38", "38000"),
)  # fmt: skip
STREETS = (
    "rue de la République", "avenue Jean Jaurès", "boulevard Victor Hugo", "rue Pasteur",
    "place de la Mairie", "rue des Lilas", "allée des Tilleuls", "chemin du Moulin",
)  # fmt: skip
MARITAL = (("M", "Married"), ("S", "Never Married"), ("D", "Divorced"), ("W", "Widowed"))
INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"
LOCAL_MRN = "urn:oid:1.2.250.1.71.4.2.7.99"


def _nir(rng: random.Random, sex: int, year: int, month: int, department: str) -> str:
    """A 15-digit NIR (13 digits + the mod-97 key) — synthetic, never a real person's."""
    body = f"{sex}{year % 100:02d}{month:02d}{department.replace('A', '0')[:2]}"
    body += f"{rng.randint(1, 999):03d}{rng.randint(1, 999):03d}"
    return f"{body}{97 - int(body) % 97:02d}"


def patient(rng: random.Random, index: int) -> dict[str, Any]:
    """One realistic Patient resource (no id: the server assigns it)."""
    female = rng.random() < 0.52
    given = rng.choice(GIVEN_F if female else GIVEN_M)
    second = rng.choice(GIVEN_F if female else GIVEN_M)
    family = rng.choice(FAMILY)
    birth_name = rng.choice(FAMILY)
    year, month, day = rng.randint(1930, 2023), rng.randint(1, 12), rng.randint(1, 28)
    city, department, postal = rng.choice(CITIES)
    street = f"{rng.randint(1, 180)} {rng.choice(STREETS)}"
    marital_code, marital_display = rng.choice(MARITAL)
    phone = f"+33 6 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} " + (
        f"{rng.randint(10, 99)}"
    )
    email = f"{given.lower()}.{family.lower()}{index}@example.fr".encode("ascii", "ignore")
    birth_date = f"{year:04d}-{month:02d}-{day:02d}"
    gender = "female" if female else "male"
    narrative = (
        f'<div xmlns="http://www.w3.org/1999/xhtml"><p><b>{given} {family.upper()}</b>, '
        f"{'née' if female else 'né'} le {day:02d}/{month:02d}/{year}</p>"
        f"<p>{street}, {postal} {city}</p></div>"
    )
    return {
        "resourceType": "Patient",
        "meta": {"profile": ["http://interopsante.org/fhir/StructureDefinition/FrPatient"]},
        "text": {"status": "generated", "div": narrative},
        "identifier": [
            {
                "use": "official",
                "type": {
                    "coding": [
                        {
                            "system": "http://interopsante.org/CodeSystem/v2-0203",
                            "code": "INS-NIR",
                            "display": "NIR définitif",
                        }
                    ]
                },
                "system": INS_NIR,
                "value": _nir(rng, 2 if female else 1, year, month, department),
            },
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                            "code": "MR",
                        }
                    ]
                },
                "system": LOCAL_MRN,
                "value": f"IPP{rng.randint(10_000_000, 99_999_999)}",
            },
        ],
        "active": True,
        "name": [
            {"use": "official", "family": family, "given": [given, second]},
            *(
                [{"use": "maiden", "family": birth_name, "given": [given]}]
                if female and rng.random() < 0.4
                else []
            ),
        ],
        "telecom": [
            {"system": "phone", "value": phone, "use": "mobile"},
            {"system": "email", "value": email.decode(), "use": "home"},
        ],
        "gender": gender,
        "birthDate": birth_date,
        "address": [
            {
                "use": "home",
                "type": "physical",
                "line": [street],
                "city": city,
                "postalCode": postal,
                "country": "FRA",
            }
        ],
        "maritalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                    "code": marital_code,
                    "display": marital_display,
                }
            ]
        },
        "contact": [
            {
                "relationship": [
                    {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}
                        ]
                    }
                ],
                "name": {"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN_F)]},
                "telecom": [{"system": "phone", "value": "+33 1 23 45 67 89"}],
            }
        ],
        "communication": [
            {
                "language": {
                    "coding": [
                        {"system": "urn:ietf:bcp:47", "code": "fr-FR", "display": "French (France)"}
                    ]
                },
                "preferred": True,
            }
        ],
    }


def patients(count: int, seed: int = 42) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [patient(rng, i) for i in range(count)]
