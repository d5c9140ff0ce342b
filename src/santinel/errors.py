"""The error tree. Each error knows its HTTP status and FHIR issue code (R4 `valueset-issue-type`).

One handler in `web` renders any of them as an OperationOutcome; nothing else formats errors.
Messages are written for the client: they never carry stack traces, SQL, paths or versions.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue."""

    code: str
    diagnostics: str
    severity: str = "error"
    expression: tuple[str, ...] = ()


@dataclass
class FhirError(Exception):
    """Base of every error that becomes an OperationOutcome."""

    diagnostics: str
    expression: tuple[str, ...] = ()
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    issue_code: str | None = None

    status = 500
    code = "exception"

    def __post_init__(self) -> None:
        super().__init__(self.diagnostics)

    def all_issues(self) -> list[Issue]:
        if self.issues:
            return self.issues
        code = self.issue_code or self.code
        return [Issue(code=code, diagnostics=self.diagnostics, expression=self.expression)]


class BadRequest(FhirError):
    status = 400
    code = "invalid"


class InvalidSearch(BadRequest):
    code = "processing"


class Unauthorized(FhirError):
    status = 401
    code = "login"


class Forbidden(FhirError):
    status = 403
    code = "forbidden"


class NotFound(FhirError):
    status = 404
    code = "not-found"


class UnknownResourceType(NotFound):
    code = "not-supported"


class MethodNotAllowed(FhirError):
    status = 405
    code = "not-supported"


class NotAcceptable(FhirError):
    status = 406
    code = "not-supported"


class Conflict(FhirError):
    status = 409
    code = "conflict"


class Gone(FhirError):
    status = 410
    code = "deleted"


class PreconditionFailed(FhirError):
    status = 412
    code = "conflict"


class PayloadTooLarge(FhirError):
    status = 413
    code = "too-costly"


class UnsupportedMediaType(FhirError):
    status = 415
    code = "not-supported"


class UnprocessableEntity(FhirError):
    """A well-formed resource that breaks the R4 definitions (`http.html#2.21.0.7`)."""

    status = 422
    code = "processing"


class TooCostly(FhirError):
    status = 422
    code = "too-costly"


class ServiceUnavailable(FhirError):
    status = 503
    code = "transient"
