"""Audit bodies sealed at rest, the pure parts: what the chain hashes (legacy records keep
their hash, a key id changes it), the AAD that binds a sealed body to its record, and the
erased view served once a patient's key is gone."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import uuid

import orjson
import pytest

from santinel.audit.chain import link, link_stored
from santinel.audit.erased import erased_view
from santinel.audit.events import Actor, Happening, build
from santinel.audit.records import GENESIS, AuditRecord, canonical
from santinel.crypto.envelope import DataKey, Tampered, new_key
from santinel.services.audit_verify import column_disagreement
from santinel.storage.sql.audit_sealing import audit_aad, stored

QUERY = b"family=Dupont&birthdate=1980-01-01"


def record() -> AuditRecord:
    actor = Actor("app-1", "10.1.2.3", "Practitioner/7", ("TREAT",), "system/Patient.rs")
    happening = Happening("search-type", patient="p1", query=QUERY, request_id="r1")
    return build(uuid.uuid4().hex, 1_795_000_000_000_000, actor, happening, "santinel@node-1")


def test_a_record_in_clear_keeps_the_hash_it_was_chained_with_before_sealing() -> None:
    built = record()
    columns = {k: v for k, v in built.__dict__.items() if k not in ("body", "key_id")}
    fields = {"seq": 1, **columns, "body_sha256": hashlib.sha256(built.body).hexdigest()}
    before_0010 = hashlib.sha256(GENESIS.encode() + canonical(fields)).hexdigest()
    assert link(GENESIS, 1, built) == before_0010


def test_the_key_id_and_the_sealed_bytes_are_chained() -> None:
    built, key = record(), DataKey(uuid.uuid4().hex, new_key())
    body, key_id = stored(built, 1, key)
    chained = link_stored(GENESIS, 1, built, body, key_id)
    assert chained == link(GENESIS, 1, dataclasses.replace(built, body=body, key_id=key_id))
    assert chained != link_stored(GENESIS, 1, built, body, None)
    assert chained != link_stored(GENESIS, 1, built, body, uuid.uuid4().hex)
    assert chained != link_stored(GENESIS, 1, built, built.body, key_id)


def test_a_sealed_body_opens_only_at_its_own_record_and_key_id() -> None:
    built, key = record(), DataKey(uuid.uuid4().hex, new_key())
    body, key_id = stored(built, 5, key)
    assert key_id == key.key_id
    assert QUERY not in body
    assert base64.b64encode(QUERY) not in body
    assert key.open(body, audit_aad(built.event_id, 5, key.key_id)) == built.body
    for moved in (
        audit_aad(built.event_id, 6, key.key_id),  # another seq
        audit_aad(uuid.uuid4().hex, 5, key.key_id),  # another record's
        audit_aad(built.event_id, 5, uuid.uuid4().hex),  # another key id
    ):
        with pytest.raises(Tampered):
            key.open(body, moved)


def test_without_a_key_a_record_is_stored_as_built() -> None:
    built = record()
    assert stored(built, 1, None) == (built.body, None)


def test_the_erased_view_shows_the_clear_columns_and_no_detail() -> None:
    built = record()
    view = erased_view(built)
    event = orjson.loads(view)
    assert event["meta"]["security"][0]["code"] == "REDACTED"
    assert event["meta"]["tag"][0]["code"] == "details-erased"
    assert event["id"] == built.event_id
    assert base64.b64encode(QUERY) not in view
    for detail in (b"10.1.2.3", b"TREAT", b"node-1", b"r1"):
        assert detail not in view
    assert event["outcome"] == "0"
    assert event["action"] == built.action
    # what it shows is exactly what the columns say
    assert column_disagreement(dataclasses.replace(built, body=view)) is None
