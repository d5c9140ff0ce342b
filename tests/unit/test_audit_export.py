"""Audit export formats (NDJSON, RFC 5424 syslog, checkpoints) and the pure checks `santinel
audit verify` relies on: anchor signatures, column/body agreement, bounded actors."""

from __future__ import annotations

import base64
import dataclasses
import re
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from joserfc.jwk import ECKey

from santinel.audit import checkpoint as signing
from santinel.audit import export
from santinel.audit.chain import ChainedRow, link
from santinel.audit.events import Actor, Happening, MalformedFacts, build, render
from santinel.audit.records import GENESIS, AuditRecord, canonical
from santinel.services.audit_verify import column_disagreement

# RFC 5424 section 6: HEADER SP STRUCTURED-DATA SP MSG, MSG = BOM UTF-8
SYSLOG = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (?P<host>[!-~]{1,255}) "
    rb"santinel - AUDIT (?P<sd>\[santinel@32473 seq=\"\d+\" hash=\"[0-9a-f]{64}\"\]) "
    rb"\xef\xbb\xbf(?P<msg>\{.*\})$"
)


def event(subtype: str = "read", status_outcome: str = "0", **actor: object) -> AuditRecord:
    """A record as the store's `events` yields it to an export: its body rendered."""
    who = Actor(**{"client_id": "c1", "client_address": "10.0.0.1", **actor})  # type: ignore[arg-type]
    happening = Happening(subtype, status_outcome, patient="p1", entity="Patient/p1/_history/1")
    built = build(uuid.uuid4().hex, 1_795_000_000_123_456, who, happening, "santinel@node-1")
    return dataclasses.replace(built, body=render(built.body))


def chained(record: AuditRecord, seq: int = 1) -> ChainedRow:
    return ChainedRow(seq, record, link(GENESIS, seq, record))


def test_syslog_line_follows_rfc_5424_and_the_atna_conventions() -> None:
    row = chained(event())
    line = export.syslog_line(row)
    match = SYSLOG.match(line)
    assert match is not None, line[:200]
    assert match["pri"] == b"85"  # facility 10 (security), severity 5 (notice)
    recorded = datetime.fromtimestamp(row.record.recorded_us // 1_000_000, tz=UTC)
    assert match["ts"] == recorded.strftime("%Y-%m-%dT%H:%M:%S.123456Z").encode()
    assert match["host"] == b"node-1"  # the observer's host
    assert orjson.loads(match["msg"]) == orjson.loads(row.record.body)
    assert b"\n" not in line
    failed = export.syslog_line(chained(event(status_outcome="4")))
    assert failed.startswith(b"<84>1 ")  # severity 4 (warning) for failures
    assert export.octet_counted(line) == str(len(line)).encode() + b" " + line


def test_structured_data_values_are_escaped() -> None:
    assert export.sd_escape('a"b\\c]d') == 'a\\"b\\\\c\\]d'


def test_ndjson_line_wraps_the_unchanged_resource() -> None:
    row = chained(event())
    line = export.ndjson_line(row)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    parsed = orjson.loads(line)
    assert parsed["seq"] == 1
    assert parsed["hash"] == row.hash
    assert orjson.dumps(parsed["resource"], option=orjson.OPT_SORT_KEYS) == row.record.body


def test_checkpoint_file_round_trip_and_bad_lines() -> None:
    key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"})
    signed = signing.sign(key, 7, "ab" * 32, 1_795_000_000_000_000)
    text = export.key_line(key) + export.checkpoint_line(signed)
    checkpoints, keys = export.read_checkpoint_file((text + text).splitlines())
    assert checkpoints == [signed, signed]
    assert keys[0]["kid"] == key.thumbprint()
    assert "d" not in keys[0]  # the public key only
    assert signing.verify(signing.import_public_key(orjson.dumps(keys[0])), signed)
    with pytest.raises(export.BadCheckpointFile, match="line 2"):
        export.read_checkpoint_file([export.key_line(key), b'{"kind": "checkpoint", "seq": "7"}'])


def test_an_anchor_signature_is_not_a_checkpoint_signature() -> None:
    key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"})
    checkpoint = signing.sign(key, 5, "cd" * 32, 1)
    anchor = signing.sign_anchor(key, 5, "cd" * 32, 1)
    assert signing.verify_anchor(key, 5, "cd" * 32, anchor)
    assert not signing.verify_anchor(key, 5, "cd" * 32, checkpoint.signature)
    assert not signing.verify_anchor(key, 6, "cd" * 32, anchor)
    assert not signing.verify(key, signing.Checkpoint(5, "cd" * 32, 1, anchor))
    other = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"})
    assert not signing.verify_anchor(other, 5, "cd" * 32, anchor)


@pytest.mark.parametrize(
    "actor",
    [
        {},
        {"client_id": None},
        {"client_id": "-"},
        {"client_id": ""},
        {"client_id": None, "client_address": None},
        {"user_ref": "Practitioner/7"},
        {"user_ref": "user:42", "purpose_of_use": ("TREAT",)},
        {"client_id": "x" * 500},
    ],
)
def test_columns_agree_with_the_body_of_every_built_event(actor: dict[str, object]) -> None:
    for subtype in ("read", "create", "search-type", "token", "login", "lockout"):
        record = event(subtype, **actor)
        assert column_disagreement(record) is None, (subtype, actor)


def test_long_claimed_client_ids_fit_their_column() -> None:
    record = event(client_id="x" * 500, user_ref="user:" + "y" * 500)
    assert record.client_id == "x" * 64
    assert record.user_ref is not None
    assert len(record.user_ref) == 200


def test_a_column_rewritten_without_its_body_is_named() -> None:
    record = event()
    forged = AuditRecord(**{**record.__dict__, "patient": "p2"})
    assert column_disagreement(forged) == "the patient column disagrees with the AuditEvent body"
    moved = AuditRecord(**{**record.__dict__, "recorded_us": record.recorded_us + 5})
    assert "recorded_us" in str(column_disagreement(moved))
    garbage = AuditRecord(**{**record.__dict__, "body": b"not json"})
    assert column_disagreement(garbage) == "the AuditEvent body is not JSON"


def test_events_built_from_cached_fragments_are_canonical_and_complete() -> None:
    """The agents, source and codings come from cached, pre-serialized fragments: the body must
    still be the canonical JSON (sorted keys) of the whole event, for two different actors."""
    for actor in (
        Actor("client-a", "10.0.0.1", "Practitioner/1", ("TREAT",), "user/Patient.rs"),
        Actor("client-b", None, None, (), None),
    ):
        happening = Happening("read", entity="Patient/p1/_history/2", patient="p1")
        record = build("e1", 1_764_430_000_000_000, actor, happening, "santinel@node")
        rendered = render(record.body)
        event = orjson.loads(rendered)
        assert rendered == canonical(event)
        assert render(rendered) == rendered  # an AuditEvent stored whole is served as it is
        assert event["agent"][0]["who"]["identifier"]["value"] == actor.client_id
        assert event["agent"][-1]["who"] == {"display": "santinel@node"}
        assert event["source"]["observer"] == {"display": "santinel@node"}
        assert event["subtype"] == [
            {"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}
        ]


def test_a_record_stores_the_event_facts_and_renders_the_whole_audit_event() -> None:
    actor = Actor("client-a", "10.0.0.1", "Practitioner/1", ("TREAT",), "user/Patient.rs")
    happening = Happening(
        "search-type", "4", "refused", None, "p1", b"family=dupont&_count=5", "req-1"
    )
    record = build("e1", 1_764_430_000_000_000, actor, happening, "santinel@node")
    assert len(record.body) < 400  # the facts, not the ~1.7 KB AuditEvent
    assert b"resourceType" not in record.body
    event = orjson.loads(render(record.body))
    assert event["resourceType"] == "AuditEvent"
    assert event["id"] == "e1"
    assert event["outcomeDesc"] == "refused"
    query = next(e["query"] for e in event["entity"] if "query" in e)
    assert base64.b64decode(query) == b"family=dupont&_count=5"
    assert event["agent"][1]["purposeOfUse"][0]["coding"][0]["code"] == "TREAT"
    assert column_disagreement(dataclasses.replace(record, body=render(record.body))) is None


def test_facts_rewritten_in_the_store_are_told_apart() -> None:
    record = build("e1", 1_764_430_000_000_000, Actor("c1"), Happening("read", patient="p1"), "s")
    facts = orjson.loads(record.body)
    facts["what"][4] = "p2"  # another patient than the column says
    moved = dataclasses.replace(record, body=render(canonical(facts)))
    assert column_disagreement(moved) == "the patient column disagrees with the AuditEvent body"
    broken_facts = [
        {**facts, "what": ["read"]},
        {**facts, "agent": None},
        {**facts, "id": None},
        {**facts, "recorded_us": 2**62},  # no date
        {**facts, "what": [7, *facts["what"][1:]]},
        {**facts, "what": [*facts["what"][:1], "99", *facts["what"][2:]]},  # no such outcome
    ]
    for broken in broken_facts:
        with pytest.raises(MalformedFacts):
            render(canonical(broken))
    with pytest.raises(MalformedFacts):
        render(b"\x00 not json")
