"""The hash chain over audit records as stored (SHA-256 over a canonical serialization).

    hash(n) = SHA-256( hash(n-1) ‖ canonical({seq, every column, key_id, sha256(stored body)}) )

The body hashed is the stored one: sealed (AES-256-GCM) since 0011, so verifying needs no key
and still works once a patient's key is erased (crypto-shredding leaves ciphertext the chain
still covers). `key_id` enters the hash only when set: records stored in clear before 0011 keep
the hash they were written with, and a key id added to or removed from a record breaks it.

A record modified, deleted, inserted or moved breaks the chain at that point; `first_break`
names the first such record. Pruning keeps verifiability: the last pruned record's (seq, hash)
becomes the anchor the remaining records chain from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from santinel.audit.records import AuditRecord, canonical


@dataclass(frozen=True)
class ChainedRow:
    """A stored record with its position and the hash stored beside it."""

    seq: int
    record: AuditRecord
    hash: str


def link(previous_hash: str, seq: int, record: AuditRecord) -> str:
    """The hash of `record` (as stored) at `seq` after `previous_hash`."""
    return link_stored(previous_hash, seq, record, record.body, record.key_id)


def link_stored(
    previous_hash: str, seq: int, record: AuditRecord, body: bytes, key_id: str | None
) -> str:
    """`link` of `record` stored as `body` sealed with `key_id` (no record built for it: this
    runs once per event on the audit's hot path)."""
    fields: dict[str, object] = {
        "seq": seq,
        "event_id": record.event_id,
        "recorded_us": record.recorded_us,
        "patient": record.patient,
        "client_id": record.client_id,
        "user_ref": record.user_ref,
        "action": record.action,
        "outcome": record.outcome,
        "subtype": record.subtype,
        "entity": record.entity,
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    if key_id is not None:
        fields["key_id"] = key_id
    return hashlib.sha256(previous_hash.encode() + canonical(fields)).hexdigest()


@dataclass(frozen=True)
class Break:
    seq: int  # the first record that does not verify (or where one is missing)
    reason: str


def first_break(rows: Iterable[ChainedRow], anchor_seq: int, anchor_hash: str) -> Break | None:
    """Walk the chain from the anchor; the first record that is missing, out of place or altered."""
    expected_seq, previous = anchor_seq + 1, anchor_hash
    for row in rows:
        if row.seq != expected_seq:
            reason = "missing record(s)" if row.seq > expected_seq else "record out of order"
            return Break(expected_seq if row.seq > expected_seq else row.seq, reason)
        if link(previous, row.seq, row.record) != row.hash:
            return Break(row.seq, "content or position altered (hash mismatch)")
        expected_seq, previous = row.seq + 1, row.hash
    return None
