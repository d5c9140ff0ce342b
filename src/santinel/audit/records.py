"""An audit record: the event's body plus the columns it is searched by.

Every column is derived from what the body says (`audit.events.build`), and the chain hash covers
them all, so neither the body nor a search column can be changed without `santinel audit verify`
noticing.

As built, `body` is the event's facts (canonical JSON, `audit.events.facts`; records written
before those were the whole AuditEvent JSON, which `audit.events.render` serves as it is) and
`key_id` None; as stored (since 0011), `body` is sealed with the data key `key_id`
(`storage.sql.audit_sealing`). Records written before 0011 are stored in clear (`key_id` None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

GENESIS = "0" * 64  # the hash "before" the first record of a chain


@dataclass(frozen=True)
class AuditRecord:
    event_id: str
    recorded_us: int
    patient: str | None  # the patient whose data the event is about (access transparency)
    client_id: str | None
    user_ref: str | None  # "Practitioner/1", "Patient/2" or "user:<id>"
    action: str  # C R U D E
    outcome: str  # 0 4 8 12
    subtype: str  # read, search-type, create, login, token…
    entity: str | None  # the data reference, e.g. "Observation/1/_history/2"
    body: bytes  # canonical JSON of the AuditEvent; stored: sealed with `key_id`
    key_id: str | None = None  # the data key sealing the stored body (None: in clear)


def canonical(data: Any) -> bytes:
    """The serialization hashed and stored: sorted keys, no whitespace (stable across nodes)."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
