"""Writing many resources: generated groups (`put_all`) and imported files (`submit`).

Neither is a way around validation. `put_all` validates every resource with the same
`parse_resource` as the REST API and stores a whole group (one demo patient and everything attached
to it) in ONE write transaction: per-resource transactions would pay one durable commit each, which
on SQLite with `synchronous=FULL` is what makes a 300,000-resource load take hours instead of
minutes. It uses update-as-create (PUT) semantics, so loading the same ids again adds versions
instead of duplicates.

`submit` sends each imported resource through `FhirService.handle`, exactly like an HTTP client,
so every rule of the REST API (ids, conditional requests, validation) applies to imports too.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

from santinel.errors import BadRequest, FhirError
from santinel.fhir import references, validation
from santinel.fhir.json import JsonObject, dumps, parse_object
from santinel.fhir.resource import new_id
from santinel.services.dispatch import FhirService
from santinel.services.guard import OPERATOR
from santinel.services.instance import checked_id, write_update
from santinel.services.request import FhirRequest, FhirResponse
from santinel.storage.base import FhirRepository, WriteTransaction
from santinel.types import ResourceId, ResourceType

Status = Literal["created", "updated", "deleted", "unchanged", "rejected"]
# Bundles whose meaning is the Bundle itself: stored whole, as a Bundle resource.
WHOLE_BUNDLE_TYPES = frozenset({"document", "message"})
# R4 `http.html#trules`: a transaction processes deletes, then creates, then updates.
# What a transaction-response entry's status says the entry did.
STATUS_BY_CODE: dict[str, Status] = {"201": "created", "200": "updated", "204": "deleted"}
REQUEST_HEADERS = {
    "ifMatch": "if-match",
    "ifNoneMatch": "if-none-match",
    "ifNoneExist": "if-none-exist",
    "ifModifiedSince": "if-modified-since",
}


@dataclass(frozen=True)
class WriteCounts:
    created: int = 0
    updated: int = 0


async def put_all(repository: FhirRepository, resources: Sequence[JsonObject]) -> WriteCounts:
    """Validate, then store all `resources` (each with an id) in one transaction, or none.

    An invalid resource rejects the whole group before anything is written; its error names it.
    """
    validated = [_validated(resource) for resource in resources]

    async def work(tx: WriteTransaction) -> WriteCounts:
        await tx.prefetch([(rtype, rid) for rtype, rid, _ in validated])
        created = 0
        for rtype, rid, resource in validated:
            _, was_created = await write_update(tx, rtype, rid, resource, None)
            created += was_created
        return WriteCounts(created, len(validated) - created)

    return await repository.run_write(work)


def _validated(resource: JsonObject) -> tuple[ResourceType, ResourceId, JsonObject]:
    label = f"{resource.get('resourceType')}/{resource.get('id')}"
    try:
        parsed = validation.parse_resource(dumps(resource))
        rid = parsed.get("id")
        if not isinstance(rid, str):
            raise BadRequest("A bulk write needs the id of every resource.", expression=("id",))
        return ResourceType(parsed["resourceType"]), checked_id(rid), parsed
    except FhirError as error:
        raise dataclasses.replace(error, diagnostics=f"{label}: {error.diagnostics}") from None


# -- imports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportOutcome:
    status: Status
    reference: str | None = None  # `Type/id` of the resource written, when known
    diagnostics: tuple[str, ...] = ()


async def submit(
    service: FhirService, body: bytes
) -> AsyncIterator[tuple[int | None, ImportOutcome]]:
    """Import one JSON text: a resource, or a Bundle whose entries are imported one by one.

    Yields (entry index or None for a lone resource, outcome).
    """
    try:
        resource = parse_object(body, "resource")
    except FhirError as error:
        yield None, _rejected(error)
        return
    if resource.get("resourceType") == "Bundle" and resource.get("type") not in WHOLE_BUNDLE_TYPES:
        async for index, outcome in submit_bundle(service, resource):
            yield index, outcome
        return
    try:
        request = _resource_request(resource, body)
    except FhirError as error:
        yield None, _rejected(error)
        return
    yield None, await submit_request(service, request)


async def submit_bundle(
    service: FhirService, bundle: JsonObject
) -> AsyncIterator[tuple[int, ImportOutcome]]:
    """Import a Bundle's entries one by one through the service; yields (entry index, outcome).

    This is the one place that decides how an imported Bundle is executed: a real transaction
    (all or nothing) replaces this function without touching the callers. Meanwhile entries with a
    `request` use its method and url, others are PUT (with an id) or POSTed; a transaction's
    entries run in the R4 order. References to an entry's `fullUrl` (e.g. `urn:uuid:…`) are
    rewritten to the stored `Type/id`: plain creates get their id chosen up front (and are sent
    as update-as-create) so that this works whatever the order of the entries.
    """
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return
    if bundle.get("type") == "transaction":
        for item in await _transaction(service, bundle, len(entries)):
            yield item
        return
    order = list(range(len(entries)))
    aliases = _known_aliases(entries)
    planned = _planned_ids(entries)
    for index, rid in planned.items():
        aliases[entries[index]["fullUrl"]] = f"{entries[index]['resource']['resourceType']}/{rid}"
    for index in order:
        entry = entries[index]
        if not isinstance(entry, dict) or _is_search_outcome(entry):
            continue
        try:
            request = entry_request(entry, aliases, planned.get(index))
        except FhirError as error:
            yield index, _rejected(error)
            continue
        outcome = await submit_request(service, request)
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str) and outcome.reference and outcome.status != "rejected":
            aliases[full_url] = outcome.reference
        yield index, outcome


async def _transaction(
    service: FhirService, bundle: JsonObject, size: int
) -> list[tuple[int, ImportOutcome]]:
    """A transaction Bundle runs as one, through the same service as `POST [base]`: every entry
    applies or none does."""
    request = FhirRequest(
        "POST",
        (),
        headers={"prefer": "return=minimal", "content-type": "application/fhir+json"},
        body=dumps(bundle),
        principal=OPERATOR,
    )
    try:
        response = await service.handle(request)
    except FhirError as error:
        failed = _rejected(error)
        skipped = ImportOutcome("rejected", diagnostics=("not applied: the transaction failed",))
        culprit = _failing_entry(error)
        return [(i, failed if i == culprit or culprit is None else skipped) for i in range(size)]
    answers = (response.resource or {}).get("entry", [])
    return [(i, _transaction_outcome(answer)) for i, answer in enumerate(answers)]


def _failing_entry(error: FhirError) -> int | None:
    for text in (*error.expression, error.diagnostics):
        found = re.search(r"Bundle\.entry\[(\d+)\]", text)
        if found:
            return int(found[1])
    return None


def _transaction_outcome(answer: JsonObject) -> ImportOutcome:
    response = answer.get("response") or {}
    code = str(response.get("status", "")).split(" ", 1)[0]
    location = str(response.get("location", ""))
    reference = "/".join(location.split("/")[:2]) if location else None
    return ImportOutcome(STATUS_BY_CODE.get(code, "unchanged"), reference)


def entry_request(
    entry: JsonObject, aliases: dict[str, str], planned_id: str | None = None
) -> FhirRequest:
    """The `FhirRequest` an entry stands for (R4 `bundle.html#transaction`); a create with a
    `planned_id` becomes an update-as-create of that id."""
    resource = entry.get("resource")
    if resource is not None and not isinstance(resource, dict):
        raise BadRequest("The entry's resource must be a JSON object.")
    if isinstance(resource, dict) and aliases:
        resource = references.rewrite(resource, aliases.get)
    if isinstance(resource, dict) and planned_id is not None:
        resource = {**resource, "id": planned_id}
        return _resource_request(resource, dumps(resource))
    request = entry.get("request")
    if request is None:
        if resource is None:
            raise BadRequest("The entry has neither a resource nor a request.")
        return _resource_request(resource, dumps(resource))
    if not isinstance(request, dict):
        raise BadRequest("The entry's request must be a JSON object.")
    method, url = request.get("method"), request.get("url")
    if not isinstance(method, str) or not isinstance(url, str):
        raise BadRequest("The entry's request needs a method and a url.")
    if method.upper() in ("GET", "HEAD"):
        raise BadRequest(f"{method} entries are reads; only writes are imported.")
    path, _, query = url.lstrip("/").partition("?")
    headers = {
        header: value
        for key, header in REQUEST_HEADERS.items()
        if isinstance(value := request.get(key), str)
    }
    return FhirRequest(
        method=method.upper(),
        path=tuple(unquote(part) for part in path.split("/") if part),
        params=tuple(parse_qsl(query, keep_blank_values=True)),
        headers={**headers, "prefer": "return=minimal"},
        body=dumps(resource) if resource is not None else b"",
        principal=OPERATOR,
    )


async def submit_request(service: FhirService, request: FhirRequest) -> ImportOutcome:
    try:
        response = await service.handle(request)
    except FhirError as error:
        return _rejected(error)
    return ImportOutcome(_status(request, response), _written_reference(request, response))


def _resource_request(resource: JsonObject, body: bytes) -> FhirRequest:
    """Update-as-create when the resource has an id, else create (the server picks the id)."""
    rtype, rid = resource.get("resourceType"), resource.get("id")
    if not isinstance(rtype, str):
        raise BadRequest("The resource has no 'resourceType'.", expression=("resourceType",))
    if isinstance(rid, str):
        return FhirRequest(
            "PUT", (rtype, rid), headers={"prefer": "return=minimal"}, body=body, principal=OPERATOR
        )
    return FhirRequest(
        "POST", (rtype,), headers={"prefer": "return=minimal"}, body=body, principal=OPERATOR
    )


def _status(request: FhirRequest, response: FhirResponse) -> Status:
    if request.method == "DELETE":
        return "deleted" if "ETag" in response.headers else "unchanged"
    if response.status == 201:
        return "created"
    return "updated" if request.method == "PUT" else "unchanged"


def _written_reference(request: FhirRequest, response: FhirResponse) -> str | None:
    """`Type/id` from the Location header (set on creates) or the request path."""
    location = response.headers.get("Location", "")
    parts = [p for p in location.split("/") if p]
    if "_history" in parts:
        at = parts.index("_history")
        if at >= 2:
            return f"{parts[at - 2]}/{parts[at - 1]}"
    if len(request.path) == 2:
        return f"{request.path[0]}/{request.path[1]}"
    return None


def _rejected(error: FhirError) -> ImportOutcome:
    return ImportOutcome("rejected", diagnostics=tuple(i.diagnostics for i in error.all_issues()))


def _entry_method(entry: Any) -> str:
    request = entry.get("request") if isinstance(entry, dict) else None
    method = request.get("method") if isinstance(request, dict) else None
    return method.upper() if isinstance(method, str) else "PUT"


def _is_search_outcome(entry: JsonObject) -> bool:
    """A searchset's OperationOutcome entry describes the search, it is not data to import."""
    search = entry.get("search")
    return isinstance(search, dict) and search.get("mode") == "outcome"


def _known_aliases(entries: list[Any]) -> dict[str, str]:
    """fullUrl → `Type/id` for entries whose target is known before anything runs (updates)."""
    aliases: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(full_url := entry.get("fullUrl"), str):
            continue
        request, resource = entry.get("request"), entry.get("resource")
        if isinstance(request, dict):
            url = request.get("url")
            if _entry_method(entry) == "PUT" and isinstance(url, str) and "?" not in url:
                aliases[full_url] = url.strip("/")
        elif isinstance(resource, dict):
            rtype, rid = resource.get("resourceType"), resource.get("id")
            if isinstance(rtype, str) and isinstance(rid, str):
                aliases[full_url] = f"{rtype}/{rid}"
    return aliases


def _planned_ids(entries: list[Any]) -> dict[int, str]:
    """Ids chosen up front for plain creates that other entries may reference by fullUrl."""
    planned: dict[int, str] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("fullUrl"), str):
            continue
        resource, request = entry.get("resource"), entry.get("request")
        if not isinstance(resource, dict) or not isinstance(
            rtype := resource.get("resourceType"), str
        ):
            continue
        if request is None:
            creates = not isinstance(resource.get("id"), str)
        else:
            creates = (
                isinstance(request, dict)
                and _entry_method(entry) == "POST"
                and "ifNoneExist" not in request
                and request.get("url") in (rtype, f"/{rtype}")
            )
        if creates:
            planned[index] = new_id()
    return planned
