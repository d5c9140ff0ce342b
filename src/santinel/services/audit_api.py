"""AuditEvents through the FHIR API: read-only, searchable, and each patient's access log.

- `GET AuditEvent/[id]` and `GET AuditEvent?…` with `patient`, `agent`, `date`, `outcome`,
  `action`, `subtype`, `entity`, `_id`, `_count` (newest first; `next` links page on). Every
  write (POST, PUT, PATCH, DELETE, and AuditEvent entries in a Bundle) is refused: the trail is
  written by the server only; the refusal itself is audited like every request.
- `GET Patient/[id]/$access-log`: who accessed that patient's record, when, from which
  application and for which purpose (like Mon espace santé's access history).
- Patient-facing views (`patient/` scopes, or a patient's own access log) show nothing about
  other patients: the query text (which may name them) and network addresses are removed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson

from santinel.auth.policy import AccessDecision
from santinel.errors import BadRequest, Forbidden, MethodNotAllowed, NotFound
from santinel.fhir.bundle import Link, bundle
from santinel.fhir.dates import parse_period
from santinel.services import guard, search
from santinel.services.request import FhirRequest, FhirResponse, is_digits
from santinel.storage.base import AuditQuery, FhirRepository
from santinel.types import ResourceId, ResourceType

AUDIT_EVENT = "AuditEvent"
ACCESS_LOG = "$access-log"
READ_ONLY = "AuditEvents are written by the server only; they cannot be created or changed."
# Parameters every FHIR request may carry, answered elsewhere (format, pretty printing).
FRAMEWORK = frozenset({"_format", "_pretty", "_summary", "_elements", "_total"})
SEARCHABLE = frozenset(
    {"patient", "agent", "date", "outcome", "action", "subtype", "entity", "_id", "_count"}
)
DEFAULT_COUNT = 50
MAX_COUNT = 500
QUERY_ROLE = "24"


def is_audit_request(request: FhirRequest) -> bool:
    path = request.path
    return path[:1] == (AUDIT_EVENT,) or (
        len(path) == 3 and path[0] == "Patient" and path[2] == ACCESS_LOG
    )


async def handle(repository: FhirRepository, request: FhirRequest) -> FhirResponse:
    path = request.path
    if path[0] == "Patient":
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed("$access-log is read with GET.", headers={"Allow": "GET"})
        return await access_log(repository, request, path[1])
    if request.method not in ("GET", "HEAD") and path[1:] != ("_search",):
        raise MethodNotAllowed(READ_ONLY, headers={"Allow": "GET"})
    if len(path) == 1 or path[1:] == ("_search",):
        decision = guard.require(request.principal, "search-type", AUDIT_EVENT)
        return await _search(repository, request, decision)
    if len(path) == 2:
        decision = guard.require(request.principal, "read", AUDIT_EVENT)
        return await _read(repository, request, decision, path[1])
    raise NotFound("AuditEvents have no history: each is written once and never changed.")


async def access_log(
    repository: FhirRepository, request: FhirRequest, patient_id: str
) -> FhirResponse:
    """The patient's own log, or an auditor's view of it; 404 for anyone else (as missing)."""
    read = guard.require(request.principal, "read", "Patient")
    await search.require_visible(repository, read, ResourceType("Patient"), ResourceId(patient_id))
    own = read.compartment == ("Patient", patient_id)
    if not own:
        auditor = guard.require(request.principal, "search-type", AUDIT_EVENT)
        if guard.confines(auditor):
            raise NotFound(f"Patient/{patient_id} is not known.")
    query = _query(request, forced_patient=patient_id, ignore={"patient"})
    return await _bundle(repository, request, query, patient_view=own or guard.confines(read))


async def _read(
    repository: FhirRepository, request: FhirRequest, decision: AccessDecision, event_id: str
) -> FhirResponse:
    query = AuditQuery(event_id=event_id, limit=1, patient=_confined_patient(decision))
    found = await repository.audit_events(query)
    if not found:
        raise NotFound(f"AuditEvent/{event_id[:64]} is not known.")
    event = orjson.loads(found[0][1])
    return FhirResponse(200, _shown(event, patient_view=guard.confines(decision)))


async def _search(
    repository: FhirRepository, request: FhirRequest, decision: AccessDecision
) -> FhirResponse:
    if decision.filters:
        raise Forbidden("Scope restrictions (?…) are not supported on AuditEvent.")
    confined = _confined_patient(decision)
    query = _query(request, forced_patient=confined)
    if confined is not None and query.patient != confined:
        query = AuditQuery(patient="\x00none", limit=1)  # another patient's: nothing
    return await _bundle(repository, request, query, patient_view=confined is not None)


def _confined_patient(decision: AccessDecision) -> str | None:
    if decision.compartment is None:
        return None
    kind, owner = decision.compartment
    if kind != "Patient":
        raise Forbidden(guard.DENIED)
    return owner


def _query(
    request: FhirRequest,
    forced_patient: str | None = None,
    ignore: frozenset[str] | set[str] = frozenset(),
) -> AuditQuery:
    fields: dict[str, Any] = {"limit": DEFAULT_COUNT}
    for name, value in request.params:
        if name in FRAMEWORK or name in ignore:
            continue
        if name == "_before":
            if not is_digits(value) or len(value) > 18:
                raise BadRequest("_before is a page cursor from a `next` link.")
            fields["before_seq"] = int(value)
        elif name not in SEARCHABLE:
            raise BadRequest(
                f"'{name[:40]}' is not a supported AuditEvent search parameter; "
                f"use {', '.join(sorted(SEARCHABLE))}."
            )
        else:
            _criterion(fields, name, value)
    if forced_patient is not None:
        fields.setdefault("patient", forced_patient)
    return AuditQuery(**fields)


def _criterion(fields: dict[str, Any], name: str, value: str) -> None:
    match name:
        case "patient":
            fields["patient"] = value.removeprefix("Patient/")
        case "agent":
            if "/" in value:
                fields["user_ref"] = value
            else:
                fields["client_id"] = value
        case "date":
            _date(fields, value)
        case "outcome" | "action" | "subtype" | "entity":
            fields[name] = value.rsplit("|", 1)[-1]
        case "_id":
            fields["event_id"] = value
        case "_count":
            if not is_digits(value):
                raise BadRequest("_count is a number.")
            fields["limit"] = max(1, min(int(value), MAX_COUNT))


def _date(fields: dict[str, Any], value: str) -> None:
    prefix, rest = (value[:2], value[2:]) if value[:2].isalpha() else ("eq", value)
    period = parse_period(rest)
    match prefix:
        case "eq":
            fields["since_us"], fields["until_us"] = period.start, period.end + 1
        case "ge":
            fields["since_us"] = period.start
        case "gt":
            fields["since_us"] = period.end + 1
        case "le":
            fields["until_us"] = period.end + 1
        case "lt":
            fields["until_us"] = period.start
        case _:
            raise BadRequest(f"The prefix '{prefix}' is not supported on AuditEvent.date.")


async def _bundle(
    repository: FhirRepository, request: FhirRequest, query: AuditQuery, *, patient_view: bool
) -> FhirResponse:
    rows = await repository.audit_events(query)
    entries = [
        {
            "fullUrl": f"{request.base_url}/AuditEvent/{event['id']}",
            "resource": _shown(event, patient_view=patient_view),
            "search": {"mode": "match"},
        }
        for event in (orjson.loads(body) for _, body in rows)
    ]
    path = "/".join(request.path)
    kept = [(k, v) for k, v in request.params if k != "_before"]
    links = [Link("self", f"{request.base_url}/{path}?{urlencode(request.params)}")]
    if len(rows) == query.limit:
        cursor = urlencode([*kept, ("_before", str(rows[-1][0]))])
        links.append(Link("next", f"{request.base_url}/{path}?{cursor}"))
    return FhirResponse(200, bundle("searchset", entries, links))


def _shown(event: dict[str, Any], *, patient_view: bool) -> dict[str, Any]:
    """What a patient may see of an event about them: no query text, no network address."""
    if not patient_view:
        return event
    entities = [e for e in event.get("entity", []) if e.get("role", {}).get("code") != QUERY_ROLE]
    agents = [{k: v for k, v in a.items() if k != "network"} for a in event.get("agent", [])]
    shown = {**event, "agent": agents}
    if entities:
        shown["entity"] = entities
    else:
        shown.pop("entity", None)
    return shown
