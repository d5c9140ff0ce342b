"""The transport-independent request and response: `FhirRequest -> FhirResponse`.

HTTP routes, transaction bundle entries, the CLI and tests all enter through these two types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from santinel.auth.principal import Principal
from santinel.errors import BadRequest
from santinel.fhir.resource import http_date
from santinel.storage.base import StoredVersion

RETURN_PREFERENCES = ("minimal", "representation", "OperationOutcome")


@dataclass(frozen=True)
class FhirRequest:
    method: str
    path: tuple[str, ...]  # segments after the FHIR base, e.g. ("Patient", "1", "_history")
    params: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    base_url: str = ""  # the FHIR base as the client sees it, without a trailing slash
    principal: Principal | None = None  # who asks (None: nobody authenticated → 401)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    def prefer(self, token: str) -> str | None:
        """The value of one `Prefer` preference (RFC 7240), e.g. `return` or `handling`."""
        for part in (self.header("prefer") or "").split(","):
            name, _, value = part.strip().partition("=")
            if name.strip().lower() == token:
                return value.strip().strip('"')
        return None

    def return_preference(self) -> str:
        value = self.prefer("return") or "representation"
        return value if value in RETURN_PREFERENCES else "representation"


@dataclass
class FhirResponse:
    status: int
    resource: dict[str, Any] | None = None
    raw: bytes | None = None  # stored JSON bytes served as they are (no re-serialisation)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_version(cls, status: int, stored: StoredVersion, base_url: str) -> FhirResponse:
        """A response carrying `stored` with its ETag, Last-Modified (and Location on 201)."""
        response = cls(status, raw=stored.body, headers=version_headers(stored))
        if status == 201:
            response.headers["Location"] = version_url(base_url, stored)
        return response


def version_headers(stored: StoredVersion) -> dict[str, str]:
    return {"ETag": f'W/"{stored.version}"', "Last-Modified": http_date(stored.last_updated)}


def version_url(base_url: str, stored: StoredVersion) -> str:
    return f"{base_url}/{stored.resource_type}/{stored.resource_id}/_history/{stored.version}"


def is_digits(text: str) -> bool:
    """ASCII digits only: `str.isdigit` also accepts '²' or '٣', which `int()` then refuses."""
    return text.isascii() and text.isdigit()


def parse_etag(value: str, header: str = "If-Match") -> int:
    """The version number in an ETag (`W/"3"`, `"3"` or `3`)."""
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not is_digits(text):
        raise BadRequest(f'{header} must be an ETag such as W/"3".', expression=(header,))
    return int(text)
