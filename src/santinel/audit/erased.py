"""The view served of an AuditEvent whose details were erased with its patient's data key.

Crypto-shredding a patient makes the sealed bodies of the events about them unreadable (the
query they were found by, addresses, purposeOfUse): what is left is the record's clear columns,
which the chain covers: when, which interaction (type/subtype/action), its outcome, which client
application and user, the pseudonymous patient id and the data reference. Served as an
AuditEvent of that content, labelled `meta.security` REDACTED (HL7 v3 ObservationValue, the
FHIR security label of redacted content) and tagged `details-erased`, rather than failing: an
access log must still say that someone accessed the record, and when.
"""

from __future__ import annotations

from santinel.audit.events import Actor, Happening, audit_event
from santinel.audit.records import AuditRecord, canonical

REDACTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "REDACTED",
    "display": "redacted",
}
ERASED_TAG = {
    "system": "https://santinel.dev/fhir/CodeSystem/audit-view",
    "code": "details-erased",
    "display": "details erased with the patient's data key (crypto-shredding)",
}
OBSERVER = "santinel"  # the observer's host was in the erased details


def erased_view(record: AuditRecord) -> bytes:
    """The AuditEvent JSON built from `record`'s columns alone (its body is not read)."""
    actor = Actor(client_id=record.client_id, user_ref=record.user_ref)
    happening = Happening(
        str(record.subtype),
        outcome=str(record.outcome),
        entity=record.entity,
        patient=record.patient,
    )
    event = audit_event(str(record.event_id), int(record.recorded_us), actor, happening, OBSERVER)
    event["action"] = record.action  # the column, as stored
    event["meta"] = {"security": [REDACTED], "tag": [ERASED_TAG]}
    return canonical(event)
