"""The harness's own query building, checked without a server."""

from __future__ import annotations

from santinel.fhir.dates import parse_period
from santinel.fhir.search.values import (
    CompositeValue,
    DateValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
)
from tests.conformance.plan import cover, pick
from tests.conformance.probes import CONTAINED, Probe, escape, probes


def date(param: str, text: str) -> DateValue:
    period = parse_period(text)
    return DateValue(param, period.start, period.end)


def queries(found: list[Probe] | str) -> list[tuple[str, bool]]:
    assert not isinstance(found, str), found
    return [(probe.describe(), probe.found) for probe in found]


def test_special_characters_are_escaped() -> None:
    assert escape(r"a,b|c$d\e") == r"a\,b\|c\$d\\e"
    value = TokenValue("identifier", "urn:x|y", "1,2")
    assert queries(probes("Patient", "identifier", value)) == [
        (r"identifier=urn:x\|y|1\,2", True),
        (r"identifier=urn:x\|y|1\,2x", False),
    ]


def test_dates_are_queried_at_their_own_precision_and_a_year_later() -> None:
    assert queries(probes("Patient", "birthdate", date("birthdate", "1974-12"))) == [
        ("birthdate=1974-12", True),
        ("birthdate=1976-01", False),
    ]
    local = date("date", "2013-05-14T10:00:00+01:00")
    assert queries(probes("Encounter", "date", local))[0] == ("date=2013-05-14T09:00:00Z", True)
    fraction = date("date", "2013-05-14T10:00:00.120Z")
    assert queries(probes("Encounter", "date", fraction))[0] == (
        "date=2013-05-14T10:00:00.120Z",
        True,
    )


def test_a_period_is_queried_by_its_bounds_and_missed_after_every_value() -> None:
    period = DateValue("date", parse_period("2013").start, parse_period("2014-06").end)
    later = date("date", "2020-01-01")
    found = probes("Encounter", "date", period, (period.start, later.end))
    assert queries(found) == [
        ("date=ge2013-01-01T00:00:00.000000Z&date=le2014-06-30T23:59:59.999999Z", True),
        ("date=ge2021-01-01T23:59:59.999999Z", False),
    ]


def test_a_quantity_gives_its_system_and_code_or_its_unit() -> None:
    coded = QuantityValue(
        "value-quantity", 5.4, 5.35, 5.45, "http://unitsofmeasure.org", "mg", "mg"
    )
    assert queries(probes("Observation", "value-quantity", coded))[0] == (
        r"value-quantity=5.4|http://unitsofmeasure.org|mg",
        True,
    )
    unit_only = QuantityValue("value-quantity", 12, 11.5, 12.5, None, None, "a")
    assert queries(probes("Observation", "value-quantity", unit_only)) == [
        ("value-quantity=12||a", True),
        ("value-quantity=1120||a", False),
    ]


def test_strings_check_prefix_exact_and_near_misses() -> None:
    value = StringValue("family", "lefevre", "Lefèvre")
    assert queries(probes("Patient", "family", value)) == [
        ("family=lef", True),
        ("family:exact=Lefèvre", True),
        ("family=lefevrezzz", False),
        ("family:exact=Lefèvr", False),
    ]


def test_contained_references_are_not_probed() -> None:
    assert probes("Encounter", "location", ReferenceValue("location", None, None, "#l1")) == (
        CONTAINED
    )


def test_composites_join_their_components_and_miss_on_the_first() -> None:
    value = CompositeValue(
        "code-value-quantity",
        (
            TokenValue("code", "http://loinc.org", "8480-6"),
            QuantityValue("value-quantity", 140, 139.5, 140.5, None, "mm[Hg]", "mmHg"),
        ),
    )
    assert queries(probes("Observation", "code-value-quantity", value)) == [
        ("code-value-quantity=http://loinc.org|8480-6$140||mm[Hg]", True),
        ("code-value-quantity=http://loinc.org|8480-6x$140||mm[Hg]", False),
    ]


def test_the_first_value_a_query_can_express_is_picked() -> None:
    values = [
        ReferenceValue("subject", None, None, "#p1"),
        ReferenceValue("subject", "Patient", "p2", "Patient/p2"),
    ]
    assert queries(pick("Observation", ("Observation", "subject"), values))[0] == (
        "subject=Patient/p2",
        True,
    )


def test_the_cover_takes_the_examples_holding_most_pairs() -> None:
    a, b, c = ("Patient", "a"), ("Patient", "b"), ("Patient", "c")
    chosen = cover(
        {("Patient", "name"): [a, b], ("Patient", "gender"): [b], ("Patient", "phone"): [c, b]}
    )
    assert set(chosen.values()) == {b}
