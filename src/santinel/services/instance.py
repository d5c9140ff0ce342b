"""Instance-level interactions (R4 `http.html`): read, vread, update, delete."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

from santinel.auth.policy import AccessDecision
from santinel.errors import BadRequest, Gone, NotFound, PreconditionFailed
from santinel.fhir import validation
from santinel.fhir.json import parse_object
from santinel.fhir.outcome import information
from santinel.fhir.resource import is_valid_id
from santinel.fhir.subsetting import select_elements, summarize
from santinel.services import audit_context, guard
from santinel.services.confined_writes import confined
from santinel.services.request import (
    FhirRequest,
    FhirResponse,
    is_digits,
    parse_etag,
    version_headers,
)
from santinel.storage.base import FhirRepository, StoredVersion, WriteTransaction
from santinel.types import ResourceId, ResourceType, VersionId

# Versions are 32-bit integers in storage; a longer number cannot name one (and must not reach SQL).
MAX_VERSION_DIGITS = 9


def checked_id(value: str) -> ResourceId:
    if not is_valid_id(value):
        raise BadRequest(f"'{value[:70]}' is not a valid resource id.", issue_code="value")
    return ResourceId(value)


async def read(
    repository: FhirRepository, request: FhirRequest, rtype: ResourceType, rid: ResourceId
) -> FhirResponse:
    stored = await repository.read(rtype, rid)
    if stored is None:
        raise NotFound(f"{rtype}/{rid} is not known.")
    if stored.deleted:
        raise Gone(f"{rtype}/{rid} was deleted.", headers=version_headers(stored))
    if _not_modified(request, stored):
        return FhirResponse(304, headers=version_headers(stored))
    audit_context.note_served([stored])
    return shaped(request, FhirResponse.for_version(200, stored, request.base_url))


async def vread(
    repository: FhirRepository,
    request: FhirRequest,
    rtype: ResourceType,
    rid: ResourceId,
    version: str,
    decision: AccessDecision | None = None,
) -> FhirResponse:
    """`decision`: the caller's, already checked against the current version; an older version
    outside its compartment (the resource was moved from another patient) is as missing."""
    if not is_digits(version) or len(version) > MAX_VERSION_DIGITS:
        raise NotFound(f"{rtype}/{rid} has no version '{version[:20]}'.")
    stored = await repository.vread(rtype, rid, VersionId(int(version)))
    if stored is None or (decision is not None and not guard.version_visible(decision, stored)):
        raise NotFound(f"{rtype}/{rid} has no version {version}.")
    if stored.deleted:
        raise Gone(
            f"Version {version} of {rtype}/{rid} is a deletion.", headers=version_headers(stored)
        )
    audit_context.note_served([stored])
    return shaped(request, FhirResponse.for_version(200, stored, request.base_url))


async def update(
    repository: FhirRepository, request: FhirRequest, rtype: ResourceType, rid: ResourceId
) -> FhirResponse:
    resource = validation.parse_resource(request.body, expected_type=rtype)
    body_id = resource.get("id")
    if body_id is None:
        raise BadRequest(
            "An update must carry the resource id in its body.", expression=(f"{rtype}.id",)
        )
    if body_id != rid:
        raise BadRequest(
            f"The id in the body ('{str(body_id)[:64]}') differs from the URL ('{rid}').",
            expression=(f"{rtype}.id",),
        )
    if_match = request.header("if-match")
    expected = parse_etag(if_match) if if_match else None

    async def work(tx: WriteTransaction) -> tuple[StoredVersion, bool]:
        guarded = confined(tx, request.principal, "update")
        return await write_update(guarded, rtype, rid, resource, expected)

    stored, created = await repository.run_write(work)
    return write_response(request, 201 if created else 200, stored)


async def write_update(
    tx: WriteTransaction,
    rtype: ResourceType,
    rid: ResourceId,
    resource: dict[str, Any],
    expected_version: int | None,
) -> tuple[StoredVersion, bool]:
    """Store a new version of `rtype/rid`; (version, whether the resource came into being)."""
    current = await tx.current(rtype, rid)
    if expected_version is not None and (
        current is None or current.deleted or current.version != expected_version
    ):
        have = (
            "no current version"
            if current is None or current.deleted
            else f"version {current.version}"
        )
        raise PreconditionFailed(
            f"If-Match expected version {expected_version} of {rtype}/{rid}, the server has {have}."
        )
    stored = await tx.write_version(rtype, rid, resource, previous=current, method="PUT")
    return stored, current is None or current.deleted


async def delete(
    repository: FhirRepository, request: FhirRequest, rtype: ResourceType, rid: ResourceId
) -> FhirResponse:
    if_match = request.header("if-match")
    expected = parse_etag(if_match) if if_match else None

    async def work(tx: WriteTransaction) -> StoredVersion | None:
        return await write_delete(confined(tx, request.principal, "delete"), rtype, rid, expected)

    stored = await repository.run_write(work)
    headers = version_headers(stored) if stored else {}
    if stored is None:
        return FhirResponse(200, information(f"{rtype}/{rid} was not present; nothing to delete."))
    return FhirResponse(200, information(f"{rtype}/{rid} deleted."), headers=headers)


async def write_delete(
    tx: WriteTransaction, rtype: ResourceType, rid: ResourceId, expected_version: int | None
) -> StoredVersion | None:
    """Logically delete; None when there was nothing live to delete (deletes are idempotent)."""
    current = await tx.current(rtype, rid)
    if expected_version is not None and (current is None or current.version != expected_version):
        raise PreconditionFailed(f"If-Match does not match the current version of {rtype}/{rid}.")
    if current is None or current.deleted:
        return None
    return await tx.write_version(rtype, rid, None, previous=current, method="DELETE")


def write_response(request: FhirRequest, status: int, stored: StoredVersion) -> FhirResponse:
    """The answer to a write, per `Prefer: return=` (R4 `http.html#ops`)."""
    response = FhirResponse.for_version(status, stored, request.base_url)
    match request.return_preference():
        case "minimal":
            response.raw = None
        case "OperationOutcome":
            response.raw = None
            verb = "created" if status == 201 else "updated"
            response.resource = information(
                f"{stored.resource_type}/{stored.resource_id} {verb} (version {stored.version})."
            )
    return response


def shaped(request: FhirRequest, response: FhirResponse) -> FhirResponse:
    """Apply `_summary` / `_elements` to a single-resource response."""
    summary = request.param("_summary")
    elements = request.param("_elements")
    if response.raw is None or (summary in (None, "false") and not elements):
        return response
    resource = parse_object(response.raw, "stored resource")
    if summary not in (None, "false"):
        resource = summarize(resource, summary)
    if elements:
        resource = select_elements(resource, elements)
    response.raw, response.resource = None, resource
    return response


def _not_modified(request: FhirRequest, stored: StoredVersion) -> bool:
    if_none_match = request.header("if-none-match")
    if if_none_match:
        return any(_etag_version(tag) == stored.version for tag in if_none_match.split(","))
    if_modified_since = request.header("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return stored.last_updated // 1_000_000 <= int(since.timestamp())
    return False


def _etag_version(tag: str) -> int | None:
    try:
        return parse_etag(tag)
    except BadRequest:
        return None
