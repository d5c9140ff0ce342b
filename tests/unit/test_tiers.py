"""API tiers and partner contracts as decisions (no I/O)."""

from __future__ import annotations

import pytest

from santinel.auth import tiers
from santinel.auth.policy import authorize
from santinel.auth.principal import Principal
from santinel.auth.scopes import parse_scopes

PUBLIC = frozenset({"Organization", "Practitioner", "PractitionerRole"})


@pytest.mark.parametrize(
    "resource_type",
    ["Organization", "Location", "Practitioner", "PractitionerRole", "HealthcareService",
     "Endpoint", "CodeSystem", "ValueSet"],
)  # fmt: skip
def test_the_default_public_types_hold_no_patient_data(resource_type: str) -> None:
    assert tiers.holds_no_patient_data(resource_type)


@pytest.mark.parametrize(
    "resource_type", ["Patient", "Observation", "Group", "Task", "Device", "Slot", "Bundle", "Nope"]
)
def test_types_that_can_hold_patient_data_cannot_be_public(resource_type: str) -> None:
    with pytest.raises(tiers.UnsafePublicType):
        tiers.public_types(f"Organization,{resource_type}")


def test_the_anonymous_principal_reads_and_searches_the_public_types_only() -> None:
    anonymous = tiers.anonymous_principal(PUBLIC)
    assert anonymous.anonymous
    assert authorize(anonymous, "read", "Organization").allowed
    assert authorize(anonymous, "search-type", "PractitionerRole").allowed
    assert not authorize(anonymous, "read", "Patient").allowed
    assert not authorize(anonymous, "create", "Organization").allowed
    assert not authorize(anonymous, "history-type", "Organization").allowed


def test_a_public_tier_client_is_held_to_the_public_types_whatever_its_scopes() -> None:
    client = Principal("c", "public", parse_scopes("system/*.cruds"))
    restricted = tiers.restrict(client, None, PUBLIC)
    assert authorize(restricted, "read", "Organization").allowed
    assert not authorize(restricted, "read", "Patient").allowed
    assert not authorize(restricted, "update", "Organization").allowed
    assert not authorize(client, "read", "Organization").allowed  # never restricted: nothing


def test_a_partner_contract_limits_every_type() -> None:
    partner = Principal("p", "partner", parse_scopes("system/*.cruds"))
    bound = tiers.restrict(partner, frozenset({"Observation"}), PUBLIC)
    assert authorize(bound, "create", "Observation").allowed
    assert not authorize(bound, "read", "Patient").allowed
    assert not authorize(bound, "history-system", "*").allowed


def test_purposes_of_use_must_be_within_the_contract() -> None:
    contract = frozenset({"TREAT", "ETREAT"})
    base = Principal("p", "partner", parse_scopes("system/*.rs"))
    assert tiers.purpose_denial(base, None) is None
    assert tiers.purpose_denial(base, contract) is not None
    treating = Principal("p", "partner", base.scopes, purpose_of_use=("TREAT",))
    assert tiers.purpose_denial(treating, contract) is None
    research = Principal("p", "partner", base.scopes, purpose_of_use=("HRESCH",))
    assert tiers.purpose_denial(research, contract) is not None


def test_a_token_request_asks_purposes_within_the_contract() -> None:
    contract = frozenset({"TREAT"})
    assert tiers.requested_purposes_problem("TREAT", contract) is None
    assert tiers.requested_purposes_problem("", None) is None
    assert tiers.requested_purposes_problem("", contract) is not None
    assert tiers.requested_purposes_problem("HRESCH", contract) is not None
    assert tiers.requested_purposes_problem("bad code!", None) is not None
