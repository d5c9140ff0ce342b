"""HTML form and OAuth request bodies (`application/x-www-form-urlencoded`), size-limited."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024


class FormError(ValueError):
    """The body is not a form we accept; the message is safe to show."""


async def read_pairs(request: Request) -> list[tuple[str, str]]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != FORM:
        raise FormError("The request must be application/x-www-form-urlencoded.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormError("The request is too large.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError("The request is too large.")
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


def single_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The form as a dict; a repeated parameter is refused (RFC 6749 §3.1 and §3.2)."""
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise FormError(f"The parameter '{key[:40]}' is repeated.")
        form[key] = value
    return form
