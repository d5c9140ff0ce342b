"""Reading the entries of a batch or transaction Bundle (R4 `http.html#transaction`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from santinel.auth.principal import Principal
from santinel.errors import BadRequest, FhirError
from santinel.fhir.json import JsonObject, dumps
from santinel.fhir.references import references as references_in
from santinel.fhir.resource_types import is_resource_type
from santinel.services.request import FhirRequest

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
# R4 `http.html#trules`: deletes, then creates, then updates and patches, then reads.
ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
ENTRY_HEADERS = {
    "ifMatch": "if-match",
    "ifNoneMatch": "if-none-match",
    "ifNoneExist": "if-none-exist",
    "ifModifiedSince": "if-modified-since",
}


@dataclass(frozen=True)
class Entry:
    index: int
    method: str
    path: tuple[str, ...]  # URL segments relative to the FHIR base
    params: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    resource: JsonObject | None
    full_url: str | None

    @cached_property
    def references(self) -> list[str]:
        """Every `reference` string of the resource (access checks and rewriting both read
        them)."""
        return references_in(self.resource or {})

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"

    @property
    def resource_type(self) -> str:
        return self.path[0] if self.path else ""

    @property
    def is_conditional(self) -> bool:
        return len(self.path) == 1 and bool(self.params)

    def interaction(self) -> str:
        """The R4 interaction this entry asks for (its access is checked as such)."""
        conditional = "conditional-" if self.is_conditional else ""
        match self.method:
            case "POST":
                return "create"
            case "PUT":
                return f"{conditional}update"
            case "DELETE":
                return f"{conditional}delete"
            case "PATCH":
                return f"{conditional}patch"
            case _:
                return "read" if len(self.path) == 2 else "search-type"

    def as_request(
        self, base_url: str, prefer: str | None, principal: Principal | None = None
    ) -> FhirRequest:
        headers = dict(self.headers)
        if prefer:
            headers["prefer"] = prefer
        if self.resource is not None:
            headers["content-type"] = "application/fhir+json"
        body = dumps(self.resource) if self.resource is not None else b""
        return FhirRequest(self.method, self.path, self.params, headers, body, base_url, principal)


def raw_entries(bundle: JsonObject) -> list[Any]:
    raw = bundle.get("entry", [])
    if not isinstance(raw, list):
        raise BadRequest("Bundle.entry must be a list.", expression=("Bundle.entry",))
    return raw


def entries_of(bundle: JsonObject, base_url: str) -> list[Entry | FhirError]:
    """Each entry read, or the error that makes it unusable (batches answer those per entry)."""
    found: list[Entry | FhirError] = []
    for index, raw in enumerate(raw_entries(bundle)):
        try:
            found.append(_entry(index, raw, base_url))
        except FhirError as error:
            found.append(error)
    return found


def _entry(index: int, raw: Any, base_url: str) -> Entry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object.", expression=(where,))
    request = raw.get("request")
    if not isinstance(request, dict):
        raise BadRequest(f"{where} has no request.", expression=(f"{where}.request",))
    method = str(request.get("method", "")).upper()
    if method not in METHODS:
        raise BadRequest(
            f"{where}.request.method must be one of {', '.join(METHODS)}.",
            expression=(f"{where}.request.method",),
        )
    path, params = _split_url(str(request.get("url", "")), base_url, where)
    resource = raw.get("resource")
    if method in ("POST", "PUT") and not isinstance(resource, dict):
        raise BadRequest(
            f"{where}: a {method} needs a resource.", expression=(f"{where}.resource",)
        )
    headers = {h: str(request[k]) for k, h in ENTRY_HEADERS.items() if k in request}
    full_url = raw.get("fullUrl") if isinstance(raw.get("fullUrl"), str) else None
    return Entry(
        index,
        method,
        path,
        params,
        headers,
        resource if isinstance(resource, dict) else None,
        full_url,
    )


def _split_url(
    url: str, base_url: str, where: str
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    if not url:
        raise BadRequest(f"{where}.request.url is required.", expression=(f"{where}.request.url",))
    if url.startswith(base_url + "/"):
        url = url[len(base_url) + 1 :]
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        raise BadRequest(
            f"{where}.request.url must be relative to this server.",
            expression=(f"{where}.request.url",),
        )
    path = tuple(unquote(p) for p in parts.path.split("/") if p)
    if path and path[0] not in ("metadata", "_history") and not is_resource_type(path[0]):
        raise BadRequest(
            f"{where}.request.url names no resource type.", expression=(f"{where}.request.url",)
        )
    return path, tuple(parse_qsl(parts.query, keep_blank_values=True))
