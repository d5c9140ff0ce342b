"""French health identifiers, built the way the real ones are so that checks on them pass.

- NIR (INS-NIR, the national health identifier): sex, year and month of birth, birth department and
  commune (or 99 + country code for people born abroad), a 3-digit order number, and a 2-digit key
  `97 - (NIR mod 97)`.
- RPPS (practitioners, 11 digits) and FINESS (establishments, 9 digits whose first two are the
  department) end with a Luhn check digit.
"""

from __future__ import annotations

from datetime import date

INS_NIR_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
FINESS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
# A hospital's own patient number (IPP); a local system under a reserved example domain.
MRN_SYSTEM = "https://santinel.example.org/fhir/sid/ipp"


def nir_key(first13: str) -> str:
    """The 2-digit control key of a 13-digit NIR."""
    return f"{97 - int(first13) % 97:02d}"


def nir(gender: str, birth_date: date, department: str, commune: str, order: int) -> str:
    """A 15-digit NIR (13 digits + key).

    `department` is two digits (`99` for a birth abroad) and `commune` three (the INSEE commune
    code within the department, or the INSEE country code abroad).
    """
    digits = department + commune
    if len(department) != 2 or len(commune) != 3 or not digits.isdigit() or not 1 <= order <= 999:
        raise ValueError("a NIR needs a 2-digit department, 3-digit commune and order 1-999")
    sex = "1" if gender == "male" else "2"
    first13 = f"{sex}{birth_date.year % 100:02d}{birth_date.month:02d}{department}{commune}"
    first13 += f"{order:03d}"
    return first13 + nir_key(first13)


def is_valid_nir(value: str) -> bool:
    return len(value) == 15 and value.isdigit() and nir_key(value[:13]) == value[13:]


def luhn_digit(digits: str) -> str:
    """The Luhn check digit to append to `digits`."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:  # doubled: these become the odd positions once the key is appended
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


def is_luhn_valid(value: str) -> bool:
    return value.isdigit() and luhn_digit(value[:-1]) == value[-1]


def rpps(number: int) -> str:
    """An 11-digit RPPS number: `10`, 8 digits from `number`, and the Luhn key."""
    body = f"10{number % 100_000_000:08d}"
    return body + luhn_digit(body)


def finess(department: str, number: int) -> str:
    """A 9-digit FINESS number in `department`: 2 + 6 digits and the Luhn key."""
    body = f"{department}{number % 1_000_000:06d}"
    return body + luhn_digit(body)
