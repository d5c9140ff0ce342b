"""PATCH interactions (R4 `http.html#patch`), also inside transactions.

The document's kind comes from the Content-Type: `application/json-patch+json` (JSON Patch),
`application/merge-patch+json` (JSON Merge Patch), a `Parameters` body (FHIRPath Patch) and a
partial resource as `application/json` or `application/fhir+json` (merge patch, as `fhirpy`
sends it). The patched resource is validated like any write before it is stored.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from santinel.errors import BadRequest, NotFound, PreconditionFailed, UnsupportedMediaType
from santinel.fhir import validation
from santinel.fhir.json import JsonObject, dumps, loads
from santinel.fhir.patch import fhirpath_patch, json_patch, merge_patch
from santinel.services.confined_writes import confined
from santinel.services.instance import write_response
from santinel.services.request import FhirRequest, FhirResponse, parse_etag
from santinel.services.type_level import criteria_from, match_ids
from santinel.storage.base import FhirRepository, StoredVersion, WriteTransaction
from santinel.types import ResourceId, ResourceType

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
PATCH_MEDIA_TYPES = (JSON_PATCH, MERGE_PATCH, "application/fhir+json", "application/json")


def parse_document(content_type: str | None, body: bytes) -> tuple[str, Any]:
    """(kind, document) where kind is `json-patch`, `merge` or `fhirpath`."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in PATCH_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"PATCH takes {', '.join(PATCH_MEDIA_TYPES)}; not '{media[:60] or 'nothing'}'."
        )
    document = loads(body, "patch document")  # decimals to set keep their precision
    if media == JSON_PATCH or (media == "application/json" and isinstance(document, list)):
        return "json-patch", document
    if not isinstance(document, dict):
        raise BadRequest("The patch document must be a JSON object.")
    if media != MERGE_PATCH and document.get("resourceType") == "Parameters":
        return "fhirpath", document
    return "merge", document


def patched(current: StoredVersion, kind: str, document: Any) -> JsonObject:
    """Apply the document to the current version; validated, with type and id unchanged."""
    resource = loads(current.body or b"{}", "stored resource")
    match kind:
        case "json-patch":
            result = json_patch.apply(resource, document)
        case "fhirpath":
            result = fhirpath_patch.apply(resource, document)
        case _:
            result = merge_patch.apply(resource, document)
    if (
        result.get("resourceType") != current.resource_type
        or result.get("id") != current.resource_id
    ):
        raise BadRequest("A patch may not change the resource's type or id.")
    return validation.parse_resource(dumps(result), expected_type=current.resource_type)


async def write_patch(
    tx: WriteTransaction,
    rtype: ResourceType,
    rid: ResourceId,
    kind: str,
    document: Any,
    expected_version: int | None,
) -> StoredVersion:
    current = await tx.current(rtype, rid)
    if current is None or current.deleted:
        raise NotFound(f"{rtype}/{rid} is not known; PATCH cannot create a resource.")
    if expected_version is not None and current.version != expected_version:
        raise PreconditionFailed(
            f"If-Match expected version {expected_version} of {rtype}/{rid}, "
            f"the server has version {current.version}."
        )
    resource = patched(current, kind, document)
    return await tx.write_version(rtype, rid, resource, previous=current, method="PATCH")


async def patch_instance(
    repository: FhirRepository, request: FhirRequest, rtype: ResourceType, rid: ResourceId
) -> FhirResponse:
    kind, document = parse_document(request.header("content-type"), request.body)
    expected = _if_match(request.headers)

    async def work(tx: WriteTransaction) -> StoredVersion:
        guarded = confined(tx, request.principal, "patch")
        return await write_patch(guarded, rtype, rid, kind, document, expected)

    return write_response(request, 200, await repository.run_write(work))


async def patch_conditional(
    repository: FhirRepository, request: FhirRequest, rtype: ResourceType
) -> FhirResponse:
    criteria = criteria_from(request.params)
    if not criteria:
        raise BadRequest("A conditional PATCH needs search criteria in the URL.")
    kind, document = parse_document(request.header("content-type"), request.body)
    expected = _if_match(request.headers)

    async def work(tx: WriteTransaction) -> StoredVersion:
        tx = confined(tx, request.principal, "conditional-patch")
        found = await match_ids(tx, rtype, criteria)
        if len(found) != 1:
            problem = "no resource" if not found else "more than one resource"
            raise (NotFound if not found else PreconditionFailed)(
                f"The conditional PATCH criteria match {problem}."
            )
        return await write_patch(tx, rtype, found[0], kind, document, expected)

    return write_response(request, 200, await repository.run_write(work))


async def apply_in(
    tx: WriteTransaction,
    rtype: ResourceType,
    rid: ResourceId,
    entry_resource: JsonObject,
    headers: Mapping[str, str],
    expected_version: int | None,
) -> StoredVersion:
    """A transaction's PATCH entry: a `Parameters` (FHIRPath Patch) or a `Binary` holding a
    JSON Patch or merge patch (R4 `http.html#transaction`)."""
    if entry_resource.get("resourceType") == "Parameters":
        return await write_patch(tx, rtype, rid, "fhirpath", entry_resource, expected_version)
    if entry_resource.get("resourceType") != "Binary":
        raise BadRequest("A PATCH entry carries a Parameters or a Binary resource.")
    try:
        data = base64.b64decode(str(entry_resource.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("The Binary of a PATCH entry has no valid base64 data.") from None
    kind, document = parse_document(str(entry_resource.get("contentType", "")), data)
    return await write_patch(tx, rtype, rid, kind, document, expected_version)


def _if_match(headers: Mapping[str, str]) -> int | None:
    value = headers.get("if-match")
    return parse_etag(value) if value else None
