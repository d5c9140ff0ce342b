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

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from santinel.fhir.search.fhirpath import Node
from santinel.fhir.search.normalize import normalize
from santinel.fhir.search.values import TokenValue

CONTACT_SYSTEMS = {"phone", "fax", "email", "pager", "url", "sms", "other"}
OF_TYPE = ":of-type"


def token_values(param: str, node: Node) -> list[TokenValue]:
    # lists, not generators: tokens are most of a resource's index values
    data = node.data
    if isinstance(data, bool):
        return [TokenValue(param, None, "true" if data else "false")]
    if isinstance(data, str):
        return [TokenValue(param, None, data)] if data else []
    if isinstance(data, int | Decimal | float):
        return [TokenValue(param, None, str(data))]
    if not isinstance(data, Mapping):
        return []
    kind = node.type or _guess(data)
    if kind == "CodeableConcept":
        return _concept(param, data)
    if kind == "Coding":
        return _coding(param, data)
    if kind == "Identifier":
        return _identifier(param, data)
    if kind == "ContactPoint":
        value = _text(data.get("value"))
        return [TokenValue(param, _text(data.get("system")), value)] if value is not None else []
    return []


def _guess(data: Mapping[str, Any]) -> str | None:
    if "coding" in data or set(data) == {"text"}:
        return "CodeableConcept"
    if "value" in data and data.get("system") in CONTACT_SYSTEMS:
        return "ContactPoint"
    if "value" in data:
        return "Identifier"
    return "Coding" if "code" in data else None


def _concept(param: str, data: Mapping[str, Any]) -> list[TokenValue]:
    found: list[TokenValue] = []
    for coding in data.get("coding") or ():
        if isinstance(coding, Mapping):
            found += _coding(param, coding)
    text = _normalized(data.get("text"))
    if text is not None:
        found.append(TokenValue(param, None, None, text))
    return found


def _coding(param: str, data: Mapping[str, Any]) -> list[TokenValue]:
    system, code = _text(data.get("system")), _text(data.get("code"))
    display = _normalized(data.get("display"))
    if system is not None or code is not None or display is not None:
        return [TokenValue(param, system, code, display)]
    return []


def _identifier(param: str, data: Mapping[str, Any]) -> list[TokenValue]:
    system, value = _text(data.get("system")), _text(data.get("value"))
    kind = data.get("type")
    kind = kind if isinstance(kind, Mapping) else {}
    found: list[TokenValue] = []
    if system is not None or value is not None:
        found.append(TokenValue(param, system, value, _normalized(kind.get("text"))))
    if value is None:
        return found
    for coding in kind.get("coding") or ():
        code = _text(coding.get("code")) if isinstance(coding, Mapping) else None
        if code is not None:
            found.append(
                TokenValue(param + OF_TYPE, _text(coding.get("system")), f"{code}|{value}")
            )
    return found


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _normalized(value: Any) -> str | None:
    return (normalize(value) or None) if isinstance(value, str) else None
