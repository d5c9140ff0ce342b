"""Type-level writes (R4 `http.html`): create, conditional create, update and delete."""

from __future__ import annotations

from urllib.parse import parse_qsl

from santinel.errors import BadRequest, PreconditionFailed
from santinel.fhir import validation
from santinel.fhir.outcome import information
from santinel.fhir.resource import new_id
from santinel.fhir.search.query import RESULT_PARAMETERS
from santinel.services.confined_writes import confined
from santinel.services.instance import checked_id, write_delete, write_response, write_update
from santinel.services.request import FhirRequest, FhirResponse, version_headers
from santinel.storage.base import FhirRepository, StoredVersion, WriteTransaction
from santinel.types import ResourceId, ResourceType


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
        tx = confined(tx, request.principal, "create")
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
        tx = confined(tx, request.principal, "conditional-update")
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
        tx = confined(tx, request.principal, "conditional-delete")
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
