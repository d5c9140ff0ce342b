"""History interactions (R4 `http.html#history`): instance, type and system level.

A confined caller (patient compartment, v2 restrictions) gets the versions of the resources its
searches would find, chosen inside the history query, minus any version whose own body lies
outside (a resource moved from another patient's record); such a page may hold fewer entries
than `_count`, and history-instance then gives no total.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

from santinel.auth.policy import AccessDecision
from santinel.errors import BadRequest, InvalidSearch
from santinel.fhir.bundle import Link, bundle
from santinel.fhir.dates import parse_period
from santinel.fhir.json import parse_object
from santinel.fhir.resource import instant
from santinel.services import audit_context, guard
from santinel.services.request import FhirRequest, FhirResponse, is_digits
from santinel.storage.base import FhirRepository, HistoryQuery, StoredVersion
from santinel.types import ResourceId, ResourceType


def page_size(request: FhirRequest, default: int, maximum: int) -> int:
    """`_count`, clamped to the configured maximum (never an error for large values)."""
    value = request.param("_count")
    if value is None:
        return default
    if not is_digits(value):
        raise InvalidSearch("_count must be a non-negative integer.", expression=("_count",))
    return max(1, min(int(value), maximum))


async def history(
    repository: FhirRepository,
    request: FhirRequest,
    rtype: ResourceType | None,
    rid: ResourceId | None,
    count: int,
    decision: AccessDecision | None = None,
) -> FhirResponse:
    """`decision`: the caller's for this interaction (for history-instance, already checked
    against the resource's current version)."""
    visible = None
    if decision is not None and rid is None:
        visible = guard.history_filters(request.principal, decision, rtype)
    query = dataclasses.replace(_query(request, rtype, rid, count), visible=visible)
    page = await repository.history(query)
    versions = list(page.versions)
    total = page.total
    if decision is not None and guard.confines(decision):
        versions = _visible_versions(request, decision, rtype, versions)
        total = None
    entries = [_entry(request, v) for v in versions]
    audit_context.note_served(versions)
    scope = "/".join(p for p in (rtype, rid) if p)
    path = f"{request.base_url}/{scope + '/' if scope else ''}_history"
    links = [Link("self", _url(path, request, None))]
    # cursors come from the page as read, so a page thinned by access checks still links on
    if page.has_older and page.versions:
        links.append(Link("next", _url(path, request, f"b{page.versions[-1].sequence}")))
    if page.has_newer and page.versions:
        links.append(Link("previous", _url(path, request, f"a{page.versions[0].sequence}")))
    return FhirResponse(200, bundle("history", entries, links, total=total))


def _visible_versions(
    request: FhirRequest,
    decision: AccessDecision,
    rtype: ResourceType | None,
    versions: list[StoredVersion],
) -> list[StoredVersion]:
    decisions: dict[str, AccessDecision] = {}

    def decision_for(resource_type: str) -> AccessDecision:
        if rtype is not None:
            return decision
        if resource_type not in decisions:  # system history: each type by its own decision
            decisions[resource_type] = guard.require(
                request.principal, "history-type", resource_type
            )
        return decisions[resource_type]

    return [v for v in versions if guard.version_visible(decision_for(v.resource_type), v)]


def _query(
    request: FhirRequest, rtype: ResourceType | None, rid: ResourceId | None, count: int
) -> HistoryQuery:
    since = request.param("_since")
    at = request.param("_at")
    cursor = request.param("_page")
    before = after = None
    if cursor:
        # Sequences are 64-bit integers in storage: longer numbers were never issued.
        if cursor[:1] not in ("a", "b") or not is_digits(cursor[1:]) or len(cursor) > 19:
            raise BadRequest("The _page cursor is not one this server issued.")
        before, after = (int(cursor[1:]), None) if cursor[0] == "b" else (None, int(cursor[1:]))
    at_period = parse_period(at) if at else None
    return HistoryQuery(
        resource_type=rtype,
        resource_id=rid,
        since=parse_period(since).start if since else None,
        at_start=at_period.start if at_period else None,
        at_end=at_period.end if at_period else None,
        count=count,
        before_sequence=before,
        after_sequence=after,
    )


def _entry(request: FhirRequest, stored: StoredVersion) -> dict[str, Any]:
    url = f"{request.base_url}/{stored.resource_type}/{stored.resource_id}"
    entry: dict[str, Any] = {"fullUrl": url}
    if stored.body is not None:
        entry["resource"] = parse_object(stored.body, "stored resource")
    method = "DELETE" if stored.deleted else ("POST" if stored.method == "POST" else "PUT")
    target = (
        f"{stored.resource_type}"
        if method == "POST"
        else f"{stored.resource_type}/{stored.resource_id}"
    )
    entry["request"] = {"method": method, "url": target}
    entry["response"] = {
        "status": "204" if stored.deleted else ("201" if stored.version == 1 else "200"),
        "etag": f'W/"{stored.version}"',
        "lastModified": instant(stored.last_updated),
    }
    return entry


def _url(path: str, request: FhirRequest, cursor: str | None) -> str:
    params = [(n, v) for n, v in request.params if n in ("_count", "_since", "_at")]
    if cursor:
        params.append(("_page", cursor))
    return path + (f"?{urlencode(params)}" if params else "")
