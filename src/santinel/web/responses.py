"""Render `FhirResponse` and errors as HTTP responses."""

from __future__ import annotations

from starlette.responses import Response

from santinel.errors import FhirError, Issue
from santinel.fhir.json import dumps, loads
from santinel.fhir.outcome import operation_outcome
from santinel.services.request import FhirResponse

NO_STORE = "no-store"


def fhir_response(
    result: FhirResponse, media_type: str, *, pretty: bool = False, head: bool = False
) -> Response:
    if result.raw is not None:
        body = dumps(loads(result.raw, "stored resource"), pretty=True) if pretty else result.raw
    elif result.resource is not None:
        body = dumps(result.resource, pretty=pretty)
    else:
        body = b""
    headers = {**result.headers, "Cache-Control": NO_STORE}
    if head or result.status == 304:
        response = Response(b"", status_code=result.status, headers=headers, media_type=None)
        if body and head:
            response.headers["Content-Type"] = f"{media_type}; charset=utf-8"
        return response
    media = f"{media_type}; charset=utf-8" if body else None
    return Response(body, status_code=result.status, headers=headers, media_type=media)


def error_response(error: FhirError, media_type: str = "application/fhir+json") -> Response:
    return fhir_response(
        FhirResponse(
            error.status, operation_outcome(error.all_issues()), headers=dict(error.headers)
        ),
        media_type,
    )


def internal_error_response(request_id: str) -> Response:
    issue = Issue(
        code="exception",
        diagnostics=f"The server could not complete the request (request id {request_id}).",
    )
    return fhir_response(FhirResponse(500, operation_outcome([issue])), "application/fhir+json")
