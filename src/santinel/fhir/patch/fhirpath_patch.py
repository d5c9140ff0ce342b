"""FHIRPath Patch (R4 `fhirpatch.html`): a `Parameters` resource of operations add, insert,
delete, replace and move, each locating elements with a FHIRPath expression.

Paths use the navigational subset of FHIRPath that patches need: `Type.element`, indexes
`[n]`, `where(a = 'x' and b.c = 'y')`, `first()` and `last()`. Anything else is refused (400)
rather than guessed at. Whether `add` appends or sets comes from the R4 definitions.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from santinel.errors import BadRequest, UnprocessableEntity
from santinel.fhir.definitions import load

OPERATIONS = ("add", "insert", "delete", "replace", "move")
SEGMENT = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(\[(?P<index>\d+)\])?$")
WHERE = re.compile(r"where\((?P<condition>.+)\)$")
EQUALS = re.compile(r"(?P<path>[A-Za-z_][A-Za-z0-9_.]*)\s*=\s*'(?P<value>(?:[^'\\]|\\.)*)'")


@dataclass
class Slot:
    """An element's place: `parent[key]`, or item `index` of the array `parent[key]`."""

    parent: dict[str, Any]
    key: str
    index: int | None
    definition: str  # element path in the R4 definitions, e.g. `HumanName.given`

    def value(self) -> Any:
        item = self.parent[self.key]
        return item if self.index is None else item[self.index]


def apply(resource: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(resource)
    operations = [p for p in parameters.get("parameter", []) if p.get("name") == "operation"]
    if not operations:
        raise BadRequest("A FHIRPath Patch needs at least one 'operation' parameter.")
    for number, operation in enumerate(operations):
        parts = {p.get("name"): p for p in operation.get("part", [])}
        try:
            _operation(result, parts)
        except (BadRequest, UnprocessableEntity) as error:
            error.diagnostics = f"operation {number + 1}: {error.diagnostics}"
            raise
    return result


def _operation(resource: dict[str, Any], parts: dict[str, Any]) -> None:
    kind = _string(parts, "type")
    if kind not in OPERATIONS:
        raise BadRequest(f"type must be one of {', '.join(OPERATIONS)}.")
    slots = locate(resource, _string(parts, "path"))
    if kind in ("insert", "move"):
        items = _list_at(slots)
        if kind == "insert":
            _insert(items, _value(parts), _integer(parts, "index"))
        else:
            _move(items, _integer(parts, "source"), _integer(parts, "destination"))
        return
    if kind != "add" and any(s.key == "" for s in slots):
        raise BadRequest(f"{kind} needs a path to an element, not the resource itself.")
    if kind == "delete":
        if len(slots) > 1:
            raise UnprocessableEntity("delete matches more than one element.")
        for slot in slots:
            _remove(slot)
        return
    target = _single(slots, kind)
    if kind == "add":
        _add(target, _string(parts, "name"), _value(parts))
    else:
        _set(target, _value(parts))


def locate(resource: dict[str, Any], path: str) -> list[Slot]:
    segments = _segments(path)
    if not segments or segments[0] != resource.get("resourceType"):
        raise BadRequest(f"The path '{path[:80]}' must start with {resource.get('resourceType')}.")
    root = Slot({"": resource}, "", None, resource["resourceType"])
    slots = [root]
    for segment in segments[1:]:
        slots = _step(slots, segment)
    return slots


def _segments(path: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    depth = 0
    for char in path.strip():
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "." and depth == 0:
            out.append("".join(current))
            current = []
        else:
            current.append(char)
    out.append("".join(current))
    return [s.strip() for s in out]


def _step(slots: list[Slot], segment: str) -> list[Slot]:
    if segment == "first()":
        return slots[:1]
    if segment == "last()":
        return slots[-1:]
    where = WHERE.fullmatch(segment)
    if where:
        conditions = [c.strip() for c in where["condition"].split(" and ")]
        return [s for s in slots if all(_holds(s.value(), c) for c in conditions)]
    match = SEGMENT.fullmatch(segment)
    if not match:
        raise BadRequest(f"The path step '{segment[:60]}' is not supported in a FHIRPath Patch.")
    found: list[Slot] = []
    for slot in slots:
        found += _children(slot, match["name"])
    if match["index"] is not None:
        index = int(match["index"])
        found = found[index : index + 1]
    return found


def _children(slot: Slot, name: str) -> list[Slot]:
    node = slot.value()
    if not isinstance(node, dict) or name not in node:
        return []
    definition = _child_definition(slot.definition, name)
    value = node[name]
    if isinstance(value, list):
        return [Slot(node, name, i, definition) for i in range(len(value))]
    return [Slot(node, name, None, definition)]


def _child_definition(parent: str, name: str) -> str:
    structure = load("structure.json")
    entry = structure.get(f"{parent}.{name}")
    if entry is None:
        return f"{parent}.{name}"
    kind = entry[0]
    return kind if kind[:1].isupper() else f"{parent}.{name}"


def _repeats(parent_definition: str, name: str) -> bool:
    entry = load("structure.json").get(f"{parent_definition}.{name}")
    return bool(entry and entry[1])


def _holds(node: Any, condition: str) -> bool:
    match = EQUALS.fullmatch(condition)
    if not match:
        raise BadRequest(f"The condition '{condition[:60]}' is not supported (use a.b = 'value').")
    values = [node]
    for name in match["path"].split("."):
        values = [v[name] for v in values if isinstance(v, dict) and name in v]
        values = [x for v in values for x in (v if isinstance(v, list) else [v])]
    return any(str(v) == match["value"] for v in values)


def _single(slots: list[Slot], kind: str) -> Slot:
    if len(slots) != 1:
        raise UnprocessableEntity(
            f"{kind} needs exactly one element at the path, found {len(slots)}."
        )
    return slots[0]


def _add(target: Slot, name: str, value: Any) -> None:
    node = target.value()
    if not isinstance(node, dict):
        raise UnprocessableEntity("add needs an element with children at the path.")
    if _repeats(target.definition, name):
        node.setdefault(name, []).append(value)
    elif name in node:
        raise UnprocessableEntity(f"add: '{name}' already has a value; use replace.")
    else:
        node[name] = value


def _set(slot: Slot, value: Any) -> None:
    if slot.index is None:
        slot.parent[slot.key] = value
    else:
        slot.parent[slot.key][slot.index] = value


def _remove(slot: Slot) -> None:
    if slot.index is None:
        del slot.parent[slot.key]
        return
    items = slot.parent[slot.key]
    del items[slot.index]
    if not items:
        del slot.parent[slot.key]


def _list_at(slots: list[Slot]) -> list[Any]:
    """The one array whose items the path selects (insert and move act on a list)."""
    arrays = {id(s.parent[s.key]): s.parent[s.key] for s in slots if s.index is not None}
    if len(arrays) != 1 or len(slots) != sum(1 for s in slots if s.index is not None):
        raise UnprocessableEntity("insert and move need a path to one repeating element.")
    items: list[Any] = next(iter(arrays.values()))
    return items


def _insert(items: list[Any], value: Any, index: int) -> None:
    if not 0 <= index <= len(items):
        raise UnprocessableEntity(f"insert index {index} is outside the list.")
    items.insert(index, value)


def _move(items: list[Any], source: int, destination: int) -> None:
    if not (0 <= source < len(items) and 0 <= destination < len(items)):
        raise UnprocessableEntity("move indexes are outside the list.")
    items.insert(destination, items.pop(source))


def _string(parts: dict[str, Any], name: str) -> str:
    part = parts.get(name) or {}
    for key in ("valueString", "valueCode", "valueUri"):
        if isinstance(part.get(key), str):
            return str(part[key])
    raise BadRequest(f"The operation needs a '{name}' part.")


def _integer(parts: dict[str, Any], name: str) -> int:
    value = (parts.get(name) or {}).get("valueInteger")
    if not isinstance(value, int):
        raise BadRequest(f"The operation needs an integer '{name}' part.")
    return value


def _value(parts: dict[str, Any]) -> Any:
    """`value[x]` of the `value` part; a complex value given as sub-parts becomes an object."""
    part = parts.get("value")
    if part is None:
        raise BadRequest("The operation needs a 'value' part.")
    for key, value in part.items():
        if key.startswith("value") and key != "value":
            return value
    if "part" in part:
        return {p["name"]: _value({"value": p}) for p in part["part"] if "name" in p}
    raise BadRequest("The 'value' part carries no value.")
