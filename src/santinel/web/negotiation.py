"""Content negotiation (R4 `http.html#mime-type`): JSON only; XML is refused, never parsed."""

from __future__ import annotations

from santinel.errors import NotAcceptable, UnsupportedMediaType

FHIR_JSON = "application/fhir+json"
JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
JSON_FORMATS = ("json", *JSON_TYPES)
XML_HINTS = ("xml", "turtle", "ttl")
WRITE_METHODS = ("POST", "PUT", "PATCH")
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json")


def response_type(accept: str | None, format_param: str | None) -> str:
    """The media type to answer with; 406 when the client accepts only what we do not serve."""
    if format_param is not None:
        if format_param.split(";")[0].strip().lower() in JSON_FORMATS:
            return FHIR_JSON
        raise NotAcceptable(f"_format '{format_param[:40]}' is not supported; use json.")
    if not accept:
        return FHIR_JSON
    ranges = [r.split(";")[0].strip().lower() for r in accept.split(",")]
    for media in ranges:
        if media in ("application/json",):
            return "application/json"
        if media in (*JSON_TYPES, "*/*", "application/*", ""):
            return FHIR_JSON
    if any(hint in media for media in ranges for hint in XML_HINTS) or ranges:
        raise NotAcceptable("Only JSON (application/fhir+json) is served; XML is not supported.")
    return FHIR_JSON


def check_request_type(method: str, content_type: str | None, has_body: bool) -> None:
    """415 unless a body sent with a write is JSON."""
    if method not in WRITE_METHODS or not has_body:
        return
    media = (content_type or "").split(";")[0].strip().lower()
    if media in JSON_TYPES or (method == "PATCH" and media in PATCH_TYPES):
        return
    if not media:
        raise UnsupportedMediaType("Content-Type is required; send application/fhir+json.")
    raise UnsupportedMediaType(
        f"Content-Type '{media[:60]}' is not supported; send application/fhir+json."
    )
