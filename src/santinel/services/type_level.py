"""Type-level interactions (R4 `http.html`): create, conditional create/update/delete, search."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from santinel.errors import BadRequest, InvalidSearch, Issue, PreconditionFailed
from santinel.fhir import validation
from santinel.fhir.bundle import Link, bundle
from santinel.fhir.json import parse_object
from santinel.fhir.outcome import information, operation_outcome
from santinel.fhir.resource import new_id
from santinel.fhir.subsetting import select_elements, summarize
from santinel.services.instance import checked_id, write_delete, write_response, write_update
from santinel.services.request import FhirRequest, FhirResponse, version_headers
from santinel.storage.base import FhirRepository, StoredVersion, WriteTransaction
from santinel.types import ResourceId, ResourceType

# Parameters that shape results rather than select resources (R4 `search.html#return`).
RESULT_PARAMETERS = frozenset(
    {
        "_count",
        "_sort",
        "_summary",
        "_elements",
        "_format",
        "_pretty",
        "_total",
        "_page",
        "_include",
        "_revinclude",
        "_contained",
        "_containedType",
    }
)
SUPPORTED_CRITERIA = frozenset({"_id", "_lastUpdated"})


def criteria_from(
    params: tuple[tuple[str, str], ...] | list[tuple[str, str]],
) -> list[tuple[str, str]]:
    return [(name, value) for name, value in params if name not in RESULT_PARAMETERS]


def parse_condition(value: str, header: str) -> list[tuple[str, str]]:
    """Search criteria of a conditional header such as `If-None-Exist: identifier=sys|1`."""
    query = value.split("?", 1)[1] if "?" in value else value
    criteria = criteria_from(parse_qsl(query, keep_blank_values=True))
    if not criteria:
        raise BadRequest(f"{header} must carry search criteria.", expression=(header,))
    return criteria


async def match_ids(
    tx: WriteTransaction, rtype: ResourceType, criteria: list[tuple[str, str]]
) -> list[ResourceId]:
    """At most two matches, seen under a lock that serializes conditional writes on `rtype`."""
    await tx.serialize_on(f"conditional:{rtype}")
    return await tx.find_ids(rtype, criteria, 2)


async def create(
    repository: FhirRepository, request: FhirRequest, rtype: ResourceType
) -> FhirResponse:
    resource = validation.parse_resource(request.body, expected_type=rtype)
    condition = request.header("if-none-exist")
    criteria = parse_condition(condition, "If-None-Exist") if condition else None

    async def work(tx: WriteTransaction) -> tuple[StoredVersion | None, ResourceId | None]:
        if criteria is not None:
            found = await match_ids(tx, rtype, criteria)
            if len(found) > 1:
                raise PreconditionFailed("If-None-Exist matches more than one resource.")
            if found:
                return None, found[0]
        stored = await tx.write_version(rtype, new_id(), resource, previous=None, method="POST")
        return stored, None

    stored, existing = await repository.run_write(work)
    if stored is not None:
        return write_response(request, 201, stored)
    current = await repository.read(rtype, existing) if existing else None
    if current is None:  # deleted between the transaction and this read
        return FhirResponse(200, information("The matching resource no longer exists."))
    return write_response(request, 200, current)


async def conditional_update(
    repository: FhirRepository, request: FhirRequest, rtype: ResourceType
) -> FhirResponse:
    criteria = criteria_from(request.params)
    if not criteria:
        raise BadRequest("A conditional update needs search criteria in the URL.")
    resource = validation.parse_resource(request.body, expected_type=rtype)
    body_id = resource.get("id")

    async def work(tx: WriteTransaction) -> tuple[StoredVersion, bool]:
        found = await match_ids(tx, rtype, criteria)
        if len(found) > 1:
            raise PreconditionFailed(
                "The conditional update criteria match more than one resource."
            )
        if found and body_id is not None and body_id != found[0]:
            raise BadRequest("The id in the body differs from the resource the criteria match.")
        target = found[0] if found else (checked_id(body_id) if body_id else new_id())
        return await write_update(tx, rtype, target, {**resource, "id": target}, None)

    stored, created = await repository.run_write(work)
    return write_response(request, 201 if created else 200, stored)


async def conditional_delete(
    repository: FhirRepository, request: FhirRequest, rtype: ResourceType
) -> FhirResponse:
    criteria = criteria_from(request.params)
    if not criteria:
        raise BadRequest("A conditional delete needs search criteria in the URL.")

    async def work(tx: WriteTransaction) -> StoredVersion | None:
        found = await match_ids(tx, rtype, criteria)
        if len(found) > 1:
            raise PreconditionFailed(
                "The conditional delete criteria match more than one resource."
            )
        return await write_delete(tx, rtype, found[0], None) if found else None

    stored = await repository.run_write(work)
    if stored is None:
        return FhirResponse(200, information("No resource matched; nothing was deleted."))
    return FhirResponse(
        200,
        information(f"{rtype}/{stored.resource_id} deleted."),
        headers=version_headers(stored),
    )


async def search(
    repository: FhirRepository,
    request: FhirRequest,
    rtype: ResourceType,
    page_size: int,
) -> FhirResponse:
    """Type search. The core knows `_id` and `_lastUpdated`; paging is keyset on the id."""
    criteria = criteria_from(request.params)
    unknown = [name for name, _ in criteria if name.split(":", 1)[0] not in SUPPORTED_CRITERIA]
    if unknown and request.prefer("handling") == "strict":
        raise InvalidSearch(f"Unknown or unsupported search parameter(s): {', '.join(unknown)}.")
    used = [(n, v) for n, v in criteria if n in SUPPORTED_CRITERIA]
    after = request.param("_page")
    if after is not None:
        used.append(("_id:after", after))
    ids = await repository.find_ids(rtype, used, page_size + 1)
    more = len(ids) > page_size
    versions = await repository.read_many(rtype, ids[:page_size])
    entries = [_search_entry(request, v) for v in versions]
    if unknown:
        ignored = f"Ignored unknown or unsupported search parameter(s): {', '.join(unknown)}."
        entries.append(
            {
                "resource": operation_outcome([Issue("not-supported", ignored, "warning")]),
                "search": {"mode": "outcome"},
            }
        )
    links = [Link("self", _page_url(request, rtype, used_criteria=criteria, page=after))]
    if more:
        links.append(Link("next", _page_url(request, rtype, criteria, versions[-1].resource_id)))
    return FhirResponse(200, bundle("searchset", entries, links))


def _search_entry(request: FhirRequest, stored: StoredVersion) -> dict[str, Any]:
    resource = parse_object(stored.body or b"", "stored resource")
    summary = request.param("_summary")
    if summary not in (None, "false"):
        resource = summarize(resource, summary)
    elements = request.param("_elements")
    if elements:
        resource = select_elements(resource, elements)
    return {
        "fullUrl": f"{request.base_url}/{stored.resource_type}/{stored.resource_id}",
        "resource": resource,
        "search": {"mode": "match"},
    }


def _page_url(
    request: FhirRequest,
    rtype: ResourceType,
    used_criteria: list[tuple[str, str]],
    page: str | None,
) -> str:
    params = [*used_criteria]
    for name in ("_count", "_summary", "_elements"):
        value = request.param(name)
        if value is not None:
            params.append((name, value))
    if page is not None:
        params.append(("_page", page))
    return f"{request.base_url}/{rtype}" + (f"?{urlencode(params)}" if params else "")
