"""`POST [base]` with a batch or transaction Bundle (R4 `http.html#transaction`).

Entries are replayed through the same `FhirService.handle` as HTTP requests (batches, and the
reads of transactions) or through the same write functions inside one database transaction
(transaction writes): there is no second path around validation, and later, around policy.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from santinel.errors import BadRequest, FhirError, Forbidden, PayloadTooLarge
from santinel.fhir import validation
from santinel.fhir.bundle import bundle as make_bundle
from santinel.fhir.json import JsonObject, parse_object
from santinel.fhir.outcome import operation_outcome
from santinel.fhir.resource import instant
from santinel.services import guard, transaction
from santinel.services.authn import unauthorized
from santinel.services.bundle_entries import ORDER, Entry, entries_of, raw_entries
from santinel.services.request import FhirRequest, FhirResponse
from santinel.storage.base import WriteTransaction

if TYPE_CHECKING:
    from santinel.services.dispatch import FhirService


async def process(service: FhirService, request: FhirRequest) -> FhirResponse:
    if request.principal is None:
        raise unauthorized()
    bundle = parse_object(request.body, "Bundle")
    if bundle.get("resourceType") != "Bundle":
        raise BadRequest("POST to the base URL takes a Bundle.", expression=("resourceType",))
    limit = service.settings.max_bundle_entries
    if len(raw_entries(bundle)) > limit:
        raise PayloadTooLarge(f"The Bundle has more than {limit} entries, this server's limit.")
    match bundle.get("type"):
        case "transaction":
            return await _transaction(service, request, bundle)
        case "batch":
            return await _batch(service, request, bundle)
        case other:
            raise BadRequest(
                f"Bundle.type must be batch or transaction, not {str(other)[:40]!r}.",
                expression=("Bundle.type",),
            )


async def _batch(service: FhirService, request: FhirRequest, bundle: JsonObject) -> FhirResponse:
    """Entries are independent: each succeeds or fails on its own."""
    responses: dict[int, JsonObject] = {}
    parsed = entries_of(bundle, request.base_url)
    for index, entry in enumerate(parsed):
        if isinstance(entry, FhirError):
            responses[index] = _error_entry(entry)
    runnable = sorted((e for e in parsed if isinstance(e, Entry)), key=lambda e: ORDER[e.method])
    for entry in runnable:
        responses[entry.index] = await _replay(service, request, entry)
    entries = [responses[i] for i in range(len(parsed))]
    return FhirResponse(200, make_bundle("batch-response", entries, []))


async def _transaction(
    service: FhirService, request: FhirRequest, read: JsonObject
) -> FhirResponse:
    bundle = validation.parse_resource(
        request.body, expected_type="Bundle", allow_conditional_references=True, parsed=read
    )
    entries: list[Entry] = []
    for parsed in entries_of(bundle, request.base_url):
        if isinstance(parsed, FhirError):
            raise parsed
        entries.append(parsed)
    for entry in entries:
        if entry.method not in ("GET", "HEAD"):  # reads are checked when they are replayed
            _require_entry(request, entry)

    async def work(tx: WriteTransaction) -> dict[int, transaction.Outcome]:
        return await transaction.run(tx, entries, request.principal)

    outcomes = await service.repository.run_write(work)
    responses: dict[int, JsonObject] = {
        i: _write_entry(request, outcome) for i, outcome in outcomes.items()
    }
    for entry in entries:
        if entry.index not in responses:  # reads, after the writes committed
            responses[entry.index] = await _replay(service, request, entry)
    ordered = [responses[e.index] for e in entries]
    return FhirResponse(200, make_bundle("transaction-response", ordered, []))


async def _replay(service: FhirService, request: FhirRequest, entry: Entry) -> JsonObject:
    try:
        result = await service.handle(
            entry.as_request(request.base_url, request.header("prefer"), request.principal)
        )
    except FhirError as error:
        return _error_entry(error)
    response: dict[str, Any] = {"status": _status(result.status)}
    for header, key in (("Location", "location"), ("ETag", "etag")):
        if header in result.headers:
            response[key] = result.headers[header]
    out: dict[str, Any] = {}
    body = (
        result.resource
        if result.resource is not None
        else (parse_object(result.raw, "stored resource") if result.raw else None)
    )
    if body is not None:
        out["resource"] = body
    out["response"] = response
    return out


def _write_entry(request: FhirRequest, outcome: transaction.Outcome) -> JsonObject:
    response: dict[str, Any] = {"status": _status(outcome.status)}
    out: dict[str, Any] = {}
    stored = outcome.stored
    if stored is not None:
        url = f"{stored.resource_type}/{stored.resource_id}"
        out["fullUrl"] = f"{request.base_url}/{url}"
        response["location"] = f"{url}/_history/{stored.version}"
        response["etag"] = f'W/"{stored.version}"'
        response["lastModified"] = instant(stored.last_updated)
        if stored.body is not None and request.return_preference() == "representation":
            out["resource"] = parse_object(stored.body, "stored resource")
    out["response"] = response
    return out


def _require_entry(request: FhirRequest, entry: Entry) -> None:
    """Check a transaction write as if it came alone, and the searches it implies."""
    if entry.resource_type == "AuditEvent":
        raise Forbidden("AuditEvents are written by the server only; they cannot be changed.")
    try:
        # a confined decision is applied by the write itself (`confined_writes`)
        guard.require(request.principal, entry.interaction(), entry.resource_type)
        if "if-none-exist" in entry.headers or entry.is_conditional:
            guard.require(request.principal, "search-type", entry.resource_type)
        for reference in entry.references:
            target, question, _ = reference.partition("?")
            if question and "://" not in target:
                guard.require(request.principal, "search-type", target)
    except FhirError as error:
        raise transaction.at(entry, error) from None


def _error_entry(error: FhirError) -> JsonObject:
    return {
        "response": {
            "status": _status(error.status),
            "outcome": operation_outcome(error.all_issues()),
        }
    }


def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"
