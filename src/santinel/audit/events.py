"""AuditEvents shaped after IHE BALP (Basic Audit Log Patterns), built from plain values.

One event says who (the client application with its network address, the user with
`requestor = true` and purposeOfUse, this server), did what (type/subtype/action), to which
data (the patient, the resource reference, the query as base64), when and with which outcome.
Never a token, secret, password or resource body: only references and codes.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from typing import Any

import orjson

from santinel.audit.records import AuditRecord, canonical
from santinel.fhir.resource import instant

DCM = "http://dicom.nema.org/resources/ontology/DCM"
REST_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "Restful Operation",
}
AUTH_TYPE = {"system": DCM, "code": "110114", "display": "User Authentication"}
SECURITY_ALERT = {"system": DCM, "code": "110113", "display": "Security Alert"}
# Events of the authorization server: typed as authentication, subtyped with our own codes.
AUTH_SUBTYPE_CODES = frozenset({"login", "logout", "token", "introspect", "revoke"})
ALERT_SUBTYPE_CODES = frozenset({"lockout", "integrity-failure"})  # + stored data tampered
RESTFUL = "http://hl7.org/fhir/restful-interaction"
SANTINEL_SUBTYPES = "https://santinel.dev/fhir/CodeSystem/audit-subtype"
AUTH_SUBTYPES = {
    "login": {"system": DCM, "code": "110122", "display": "Login"},
    "logout": {"system": DCM, "code": "110123", "display": "Logout"},
}
ACTIONS = {
    "create": "C",
    "read": "R",
    "vread": "R",
    "update": "U",
    "patch": "U",
    "conditional-update": "U",
    "conditional-patch": "U",
    "delete": "D",
    "conditional-delete": "D",
}
OUTCOME_TEXT = {"0": "Success", "4": "Minor failure", "8": "Serious failure", "12": "Major failure"}
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
BALP_ENTITY = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
CLIENT_ID_SYSTEM = "urn:santinel:client"
MAX_CLIENT_ID = 64  # the sizes of the audit_event columns (migration 0007)
MAX_USER_REF = 200
USER_ID_SYSTEM = "urn:santinel:user"


@dataclass(frozen=True)
class Actor:
    """Who acted, as authentication established it (None values: not known, e.g. no token)."""

    client_id: str | None = None
    client_address: str | None = None
    user_ref: str | None = None  # fhirUser ("Practitioner/1") or "user:<id>"
    purpose_of_use: tuple[str, ...] = ()
    policy: str | None = None  # the scope that authorized the access (authorization decision)


@dataclass(frozen=True)
class Happening:
    """What happened, to which data, with which outcome."""

    subtype: str  # a restful interaction code, an operation name, or login/token/logout…
    outcome: str = "0"  # 0 success, 4 minor failure (client), 8 serious failure (server)
    outcome_desc: str | None = None
    entity: str | None = None  # "Observation/1/_history/2"
    patient: str | None = None
    query: bytes | None = None  # the raw query string, base64 in the event
    request_id: str | None = None


def action_of(subtype: str) -> str:
    return ACTIONS.get(subtype, "E")  # searches, history, operations, auth events: Execute


def outcome_of(status: int) -> str:
    return "0" if status < 400 else "4" if status < 500 else "8"


def build(
    event_id: str, recorded_us: int, actor: Actor, happening: Happening, observer: str
) -> AuditRecord:
    """The record of an event: its body is the event's facts (`facts`), from which `render`
    builds the AuditEvent whenever it is read or exported; its columns are derived from them."""
    actor = _bounded(actor)
    return AuditRecord(
        event_id=event_id,
        recorded_us=recorded_us,
        patient=happening.patient,
        client_id=actor.client_id,
        user_ref=actor.user_ref,
        action=action_of(happening.subtype),
        outcome=happening.outcome,
        subtype=happening.subtype,
        entity=happening.entity,
        body=facts(event_id, recorded_us, actor, happening, observer),
    )


# The stored body of an event written since FACTS_VERSION: what happened, not the AuditEvent
# (about 300 bytes instead of 1,700: smaller rows, fewer pages written per group commit, a
# fifth of the audit trail's size on disk, less to seal). The chain and the seal cover these
# bytes; the AuditEvent is their rendering (`render`), by the code that reads them.
FACTS_VERSION = 2


def facts(
    event_id: str, recorded_us: int, actor: Actor, happening: Happening, observer: str
) -> bytes:
    query = happening.query
    return canonical(
        {
            "facts": FACTS_VERSION,
            "id": event_id,
            "recorded_us": recorded_us,
            "observer": observer,
            "agent": [
                actor.client_id,
                actor.client_address,
                actor.user_ref,
                list(actor.purpose_of_use),
                actor.policy,
            ],
            "what": [
                happening.subtype,
                happening.outcome,
                happening.outcome_desc,
                happening.entity,
                happening.patient,
                None if query is None else base64.b64encode(query).decode("ascii"),
                happening.request_id,
            ],
        }
    )


class MalformedFacts(ValueError):
    """A stored body that is neither an event's facts nor an AuditEvent."""


def render(body: bytes) -> bytes:
    """The AuditEvent JSON (canonical) of a stored body: built from its facts, or the body
    itself when it is an AuditEvent already (records written before FACTS_VERSION).
    `MalformedFacts` for anything else: a body the builder never wrote."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedFacts("the AuditEvent body is not JSON") from None
    if not isinstance(data, dict) or data.get("facts") != FACTS_VERSION:
        return body
    try:
        client_id, address, user_ref, purposes, policy = data["agent"]
        subtype, outcome, outcome_desc, entity, patient, query, request_id = data["what"]
        texts = [client_id, address, user_ref, policy, outcome_desc, entity, patient, query]
        texts += [request_id, data["observer"]]
        if not all(t is None or isinstance(t, str) for t in texts) or not all(
            isinstance(t, str) for t in (subtype, outcome, data["id"], *purposes)
        ):
            raise TypeError("a fact of the wrong type")
        if type(data["recorded_us"]) is not int:
            raise TypeError("recorded_us is not an integer")
        actor = Actor(client_id, address, user_ref, tuple(purposes), policy)
        happening = Happening(
            subtype,
            outcome,
            outcome_desc,
            entity,
            patient,
            None if query is None else base64.b64decode(query, validate=True),
            request_id,
        )
        return canonical(
            audit_event(data["id"], data["recorded_us"], actor, happening, data["observer"])
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise MalformedFacts(f"the event's facts are malformed ({type(exc).__name__})") from None


def audit_event(
    event_id: str, recorded_us: int, actor: Actor, happening: Happening, observer: str
) -> dict[str, Any]:
    """The AuditEvent of an event, as a dict (its repeated parts pre-serialized fragments)."""
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": _type_fragment(happening.subtype),
        "subtype": _subtype_fragment(happening.subtype),
        "action": action_of(happening.subtype),
        "recorded": instant(recorded_us),
        "outcome": happening.outcome,
        "agent": _agents_fragment(actor, observer),
        "source": _source_fragment(observer),
    }
    if happening.outcome != "0":
        event["outcomeDesc"] = happening.outcome_desc or OUTCOME_TEXT[happening.outcome]
    entities = _entities(happening)
    if entities:
        event["entity"] = entities
    return event


# An event is mostly the same JSON again and again: the agents of one client, this server as
# source, the codings of a subtype. Those parts are serialized once (canonically: sorted keys)
# and reused as orjson fragments, a third of what building an audited read's event cost.
FRAGMENTS_CACHED = 4096


@functools.lru_cache(maxsize=FRAGMENTS_CACHED)
def _agents_fragment(actor: Actor, observer: str) -> orjson.Fragment:
    return orjson.Fragment(canonical(_agents(actor, observer)))


@functools.lru_cache(maxsize=16)
def _source_fragment(observer: str) -> orjson.Fragment:
    source = {
        "observer": {"display": observer},
        "type": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                "code": "4",
                "display": "Application Server",
            }
        ],
    }
    return orjson.Fragment(canonical(source))


@functools.lru_cache(maxsize=FRAGMENTS_CACHED)
def _type_fragment(code: str) -> orjson.Fragment:
    return orjson.Fragment(canonical(_type(code)))


@functools.lru_cache(maxsize=FRAGMENTS_CACHED)
def _subtype_fragment(code: str) -> orjson.Fragment:
    return orjson.Fragment(canonical([_subtype(code)]))


def _bounded(actor: Actor) -> Actor:
    """The actor cut to the audit columns' sizes, in the body and the columns alike: a client_id
    claimed at the token endpoint is the caller's text, and one longer than its column would
    make the whole group-committed batch fail on PostgreSQL (503 for every request in it)."""
    client_id, user_ref = actor.client_id, actor.user_ref
    if (client_id is None or len(client_id) <= MAX_CLIENT_ID) and (
        user_ref is None or len(user_ref) <= MAX_USER_REF
    ):
        return actor
    return Actor(
        client_id[:MAX_CLIENT_ID] if client_id else client_id,
        actor.client_address,
        user_ref[:MAX_USER_REF] if user_ref else user_ref,
        actor.purpose_of_use,
        actor.policy,
    )


def subtype_coding(code: str) -> dict[str, str]:
    """The Coding `AuditEvent.subtype` holds for a subtype code (the `subtype` column)."""
    return _subtype(code)


def _type(code: str) -> dict[str, str]:
    if code in AUTH_SUBTYPE_CODES:
        return AUTH_TYPE
    return SECURITY_ALERT if code in ALERT_SUBTYPE_CODES else REST_TYPE


def _subtype(code: str) -> dict[str, str]:
    if code in AUTH_SUBTYPES:
        return AUTH_SUBTYPES[code]
    if code.startswith("$") or code in AUTH_SUBTYPE_CODES | ALERT_SUBTYPE_CODES:
        return {"system": SANTINEL_SUBTYPES, "code": code}
    return {"system": RESTFUL, "code": code}


def _agents(actor: Actor, observer: str) -> list[dict[str, Any]]:
    agents: list[dict[str, Any]] = []
    if actor.client_id or actor.client_address:
        client: dict[str, Any] = {
            "type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
            "who": {"identifier": {"system": CLIENT_ID_SYSTEM, "value": actor.client_id or "-"}},
            "requestor": actor.user_ref is None,
        }
        if actor.client_address:
            client["network"] = {"address": actor.client_address, "type": "2"}
        if actor.policy:
            client["policy"] = [f"urn:santinel:scope:{actor.policy}"]
        agents.append(client)
    if actor.user_ref:
        user: dict[str, Any] = {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                        "code": "humanuser",
                        "display": "human user",
                    }
                ]
            },
            "who": _who(actor.user_ref),
            "requestor": True,
        }
        if actor.purpose_of_use:
            user["purposeOfUse"] = [
                {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": p}
                    ]
                }
                for p in actor.purpose_of_use
            ]
        agents.append(user)
    agents.append(
        {
            "type": {
                "coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]
            },
            "who": {"display": observer},
            "requestor": False,
        }
    )
    return agents


def _who(user_ref: str) -> dict[str, Any]:
    if user_ref.startswith("user:"):
        return {"identifier": {"system": USER_ID_SYSTEM, "value": user_ref[5:]}}
    return {"reference": user_ref}


def _entities(happening: Happening) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if happening.patient:
        entities.append(
            {
                "what": {"reference": f"Patient/{happening.patient}"},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    if happening.entity:
        entities.append(
            {
                "what": {"reference": happening.entity},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
            }
        )
    if happening.query is not None:
        entities.append(
            {
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
                "query": base64.b64encode(happening.query).decode("ascii"),
            }
        )
    if happening.request_id:
        entities.append(
            {
                "what": {"identifier": {"value": happening.request_id}},
                "type": {"system": BALP_ENTITY, "code": "XrequestId"},
            }
        )
    return entities
