"""Token index values (R4 `search.html#token`).

- code, string, id, uri…: system None, code = the value;
- boolean: system None, code `true` or `false`;
- Coding: Coding.system, Coding.code, text = Coding.display;
- CodeableConcept: one value per coding (as above), plus (None, None, text = its text);
- Identifier: Identifier.system, Identifier.value, text = Identifier.type.text;
- ContactPoint: system = ContactPoint.system (`phone`, `email`…), code = ContactPoint.value.

`:of-type` (R4, Identifier only): one more value per `Identifier.type.coding`, under the parameter
`<code>:of-type`, with system = the type coding's system and code = `<type code>|<value>`; the
search `identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345` then matches
system `…v2-0203` and code `MR|12345`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from santinel.fhir.search.fhirpath import Node
from santinel.fhir.search.normalize import normalize
from santinel.fhir.search.values import TokenValue

CONTACT_SYSTEMS = {"phone", "fax", "email", "pager", "url", "sms", "other"}
OF_TYPE = ":of-type"


def token_values(param: str, node: Node) -> Iterator[TokenValue]:
    data = node.data
    if isinstance(data, bool):
        yield TokenValue(param, None, "true" if data else "false")
    elif isinstance(data, str):
        if data:
            yield TokenValue(param, None, data)
    elif isinstance(data, int | Decimal | float):
        yield TokenValue(param, None, str(data))
    elif isinstance(data, Mapping):
        kind = node.type or _guess(data)
        if kind == "CodeableConcept":
            yield from _concept(param, data)
        elif kind == "Coding":
            yield from _coding(param, data)
        elif kind == "Identifier":
            yield from _identifier(param, data)
        elif kind == "ContactPoint":
            value = _text(data.get("value"))
            if value is not None:
                yield TokenValue(param, _text(data.get("system")), value)


def _guess(data: Mapping[str, Any]) -> str | None:
    if "coding" in data or set(data) == {"text"}:
        return "CodeableConcept"
    if "value" in data and data.get("system") in CONTACT_SYSTEMS:
        return "ContactPoint"
    if "value" in data:
        return "Identifier"
    return "Coding" if "code" in data else None


def _concept(param: str, data: Mapping[str, Any]) -> Iterator[TokenValue]:
    for coding in data.get("coding") or ():
        if isinstance(coding, Mapping):
            yield from _coding(param, coding)
    text = _normalized(data.get("text"))
    if text is not None:
        yield TokenValue(param, None, None, text)


def _coding(param: str, data: Mapping[str, Any]) -> Iterator[TokenValue]:
    system, code = _text(data.get("system")), _text(data.get("code"))
    display = _normalized(data.get("display"))
    if system is not None or code is not None or display is not None:
        yield TokenValue(param, system, code, display)


def _identifier(param: str, data: Mapping[str, Any]) -> Iterator[TokenValue]:
    system, value = _text(data.get("system")), _text(data.get("value"))
    kind = data.get("type")
    kind = kind if isinstance(kind, Mapping) else {}
    if system is not None or value is not None:
        yield TokenValue(param, system, value, _normalized(kind.get("text")))
    if value is None:
        return
    for coding in kind.get("coding") or ():
        code = _text(coding.get("code")) if isinstance(coding, Mapping) else None
        if code is not None:
            yield TokenValue(param + OF_TYPE, _text(coding.get("system")), f"{code}|{value}")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _normalized(value: Any) -> str | None:
    return (normalize(value) or None) if isinstance(value, str) else None
