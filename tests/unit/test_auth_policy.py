"""SMART scope grammar and access decisions (pure)."""

from __future__ import annotations

import pytest

from santinel.auth.policy import authorize
from santinel.auth.principal import Principal
from santinel.auth.scopes import parse_scopes


def principal(scopes: str, **context: str) -> Principal:
    return Principal("client", "internal", parse_scopes(scopes), **context)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("patient/Observation.read", "patient/Observation.rs"),
        ("user/*.write", "user/*.cud"),
        ("system/*.*", "system/*.cruds"),
        (
            "patient/Observation.rs?category=laboratory",
            "patient/Observation.rs?category=laboratory",
        ),
        ("system/Patient.cruds", "system/Patient.cruds"),
    ],
)
def test_v1_and_v2_scopes_parse_to_v2_letters(text: str, expected: str) -> None:
    assert parse_scopes(text).resources[0].text() == expected


@pytest.mark.parametrize(
    "junk", ["patient/observation.read", "admin/*.*", "system/*.x", "system/*.rc", "*"]
)
def test_malformed_scopes_are_dropped(junk: str) -> None:
    assert parse_scopes(junk).resources == ()


def test_launch_and_identity_scopes_are_kept() -> None:
    assert parse_scopes("openid fhirUser launch/patient offline_access").others == {
        "openid",
        "fhirUser",
        "launch/patient",
        "offline_access",
    }


def test_deny_by_default() -> None:
    decision = authorize(principal(""), "read", "Patient")
    assert not decision.allowed


def test_permission_letters_are_checked_per_interaction() -> None:
    reader = principal("system/Observation.rs")
    assert authorize(reader, "read", "Observation").allowed
    assert authorize(reader, "search-type", "Observation").allowed
    assert not authorize(reader, "create", "Observation").allowed
    assert not authorize(reader, "delete", "Observation").allowed
    assert not authorize(reader, "read", "Patient").allowed


def test_patient_scopes_confine_to_the_patient_compartment() -> None:
    decision = authorize(principal("patient/*.rs", patient="123"), "search-type", "Observation")
    assert decision.allowed
    assert decision.compartment == ("Patient", "123")


def test_patient_scopes_without_patient_context_are_denied() -> None:
    assert not authorize(principal("patient/*.rs"), "read", "Observation").allowed


def test_a_broader_scope_lifts_the_compartment() -> None:
    decision = authorize(
        principal("patient/*.rs system/Observation.rs", patient="1"), "read", "Observation"
    )
    assert decision.compartment is None


def test_v2_query_restrictions_become_filters() -> None:
    lab = "patient/Observation.rs?category=laboratory"
    vitals = "patient/Observation.rs?category=vital-signs"
    decision = authorize(principal(f"{lab} {vitals}", patient="1"), "search-type", "Observation")
    assert decision.filters == ((("category", "laboratory"),), (("category", "vital-signs"),))
    unrestricted = authorize(
        principal(f"{lab} patient/Observation.rs", patient="1"), "read", "Observation"
    )
    assert unrestricted.filters == ()


def test_a_patient_user_is_confined_even_with_user_scopes() -> None:
    decision = authorize(principal("user/*.rs", fhir_user="Patient/9"), "read", "Observation")
    assert decision.compartment == ("Patient", "9")


def test_refresh_may_only_narrow_scopes() -> None:
    granted = parse_scopes("patient/Observation.rs patient/Patient.r openid")
    asked = parse_scopes("patient/Observation.r patient/Condition.rs openid fhirUser")
    assert granted.narrowed_to(asked).text == "patient/Observation.r openid"


def test_passwords_are_hashed_with_argon2id_and_checked() -> None:
    from santinel.crypto.secrets import hash_password, verify_password

    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong")
    assert not verify_password(None, "correct horse")  # unknown user: same work, refused
