"""Generate `src/santinel/fhir/definitions/bindings.json` from the official R4 package: what the
server checks beyond fhirkit on every element, by type (`santinel.fhir.value_checks` reads it).

    python scripts/generate_bindings.py .cache/fhir-r4-examples/package

- `valueSets`: url → {code system url → [codes]}, the expansion of every value set a `required`
  binding of a resource or complex datatype names, when the package alone can expand it.
- `bindings`: element path (`Patient.gender`, `ContactPoint.system`) → [value set url, type].
- `skipped`: element path → why its required binding is not checked (an external terminology such
  as UCUM, BCP-47 or MIME types, a code system published only as a fragment, a known R4 error).
- `elements`: the typed tree the check walks. Context (a resource type, a datatype or a backbone
  element path) → JSON key → its type: a datatype or backbone path to descend into, `Resource`
  for a contained resource (dispatched on its `resourceType`), `date`/`dateTime`/`instant`, or
  `code`/`Coding`/`CodeableConcept` for a bound element. Choice elements appear under each JSON
  name (`effectiveDateTime`); keys that lead to nothing to check are left out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "src/santinel/fhir/definitions/bindings.json"
DATES = ("date", "dateTime", "instant")
CODED = ("code", "Coding", "CodeableConcept")
NESTED = ("BackboneElement", "Element")
# Required bindings R4 4.0.1 gets wrong (element path → why), left unchecked because enforcing them
# would refuse valid data. None so far: every code of the 5,306 official examples is in its value
# set (tests/unit/test_value_checks.py checks them all).
KNOWN_BROKEN: dict[str, str] = {}


class Unexpandable(Exception):
    """The package alone cannot tell which codes the value set holds."""


class Expander:
    def __init__(self, package: Path) -> None:
        self.value_sets: dict[str, dict[str, Any]] = {}
        self.code_systems: dict[str, dict[str, Any]] = {}
        for path in sorted(package.glob("ValueSet-*.json")):
            vs = json.loads(path.read_text())
            self.value_sets.setdefault(vs["url"], vs)
        for path in sorted(package.glob("CodeSystem-*.json")):
            cs = json.loads(path.read_text())
            self.code_systems.setdefault(cs["url"], cs)
        self.cache: dict[str, dict[str, list[str]] | str] = {}

    def expand(self, url: str) -> dict[str, list[str]]:
        """{system: sorted codes}; raises Unexpandable with the reason."""
        url = url.split("|", 1)[0]
        if url not in self.cache:
            try:
                self.cache[url] = self._expand(url)
            except Unexpandable as exc:
                self.cache[url] = str(exc)
        found = self.cache[url]
        if isinstance(found, str):
            raise Unexpandable(found)
        return found

    def _expand(self, url: str) -> dict[str, list[str]]:
        vs = self.value_sets.get(url)
        if vs is None:
            raise Unexpandable(f"value set {url} is not in the package")
        compose = vs.get("compose")
        if not compose:
            raise Unexpandable(f"value set {url} has no compose")
        included: set[tuple[str, str]] = set()
        for part in compose.get("include", []):
            included |= self._part(part, url)
        for part in compose.get("exclude", []):
            included -= self._part(part, url)
        if not included:
            raise Unexpandable(f"value set {url} expands to nothing")
        result: dict[str, list[str]] = {}
        for system, code in sorted(included):
            result.setdefault(system, []).append(code)
        return result

    def _part(self, part: dict[str, Any], url: str) -> set[tuple[str, str]]:
        """The (system, code) pairs of one include/exclude: codes of a system (all, listed, or
        filtered) intersected with the value sets it imports."""
        sets: list[set[tuple[str, str]]] = []
        for imported in part.get("valueSet", []):
            sets.append({(s, c) for s, codes in self.expand(imported).items() for c in codes})
        system = part.get("system")
        if system is not None:
            if part.get("concept"):
                # An enumeration is a complete definition, even of an external code system.
                sets.append({(system, c["code"]) for c in part["concept"]})
            else:
                concepts = self._concepts(system, url)
                if part.get("filter"):
                    sets.append({(system, c) for c in self._filter(concepts, part["filter"], url)})
                else:
                    sets.append({(system, c) for c in _all_codes(concepts)})
        if not sets:
            raise Unexpandable(f"value set {url} has an empty include")
        return set.intersection(*sets)

    def _concepts(self, system: str, url: str) -> list[dict[str, Any]]:
        cs = self.code_systems.get(system)
        if cs is None:
            raise Unexpandable(f"{url} needs code system {system}, not in the package")
        if cs.get("content") != "complete":
            raise Unexpandable(f"{url} needs code system {system}, a {cs.get('content')} only")
        if cs.get("caseSensitive") is False:
            raise Unexpandable(f"{url} needs code system {system}, not case-sensitive")
        concepts: list[dict[str, Any]] = cs.get("concept", [])
        return concepts

    def _filter(
        self, concepts: list[dict[str, Any]], filters: list[dict[str, Any]], url: str
    ) -> set[str]:
        codes = set(_all_codes(concepts))
        for f in filters:
            if f.get("property") != "concept" or f.get("op") not in ("is-a", "descendent-of"):
                raise Unexpandable(f"{url} uses filter {f.get('property')} {f.get('op')}")
            root = _find(concepts, f["value"])
            if root is None:
                raise Unexpandable(f"{url} filters on unknown concept {f['value']}")
            below = set(_all_codes(root.get("concept", [])))
            codes &= below | {root["code"]} if f["op"] == "is-a" else below
        return codes


def _all_codes(concepts: list[dict[str, Any]]) -> list[str]:
    codes: list[str] = []
    for concept in concepts:
        codes.append(concept["code"])
        codes.extend(_all_codes(concept.get("concept", [])))
    return codes


def _find(concepts: list[dict[str, Any]], code: str) -> dict[str, Any] | None:
    for concept in concepts:
        if concept["code"] == code:
            return concept
        found = _find(concept.get("concept", []), code)
        if found is not None:
            return found
    return None


def _definitions(package: Path) -> list[dict[str, Any]]:
    """The StructureDefinitions of every resource and complex datatype (not profiles)."""
    found = []
    for path in sorted(package.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text())
        kinds = ("resource", "complex-type")
        if sd.get("derivation") == "specialization" and sd.get("kind") in kinds:
            found.append(sd)
    return found


def generate(package: Path) -> dict[str, Any]:
    expander = Expander(package)
    definitions = _definitions(package)
    complex_types = {sd["type"] for sd in definitions if sd["kind"] == "complex-type"}
    value_sets: dict[str, dict[str, list[str]]] = {}
    bindings: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    raw: dict[str, dict[str, str]] = {}  # context → JSON key → type, before pruning
    for sd in definitions:
        for element in sd["snapshot"]["element"]:
            path: str = element["path"]
            parent, _, name = path.rpartition(".")
            if not parent:
                continue
            codes = [t["code"] for t in element.get("type", [])]
            binding = element.get("binding", {})
            bound = binding.get("strength") == "required" and any(c in CODED for c in codes)
            if bound:
                url = binding["valueSet"].split("|", 1)[0]
                try:
                    if path in KNOWN_BROKEN:
                        raise Unexpandable(KNOWN_BROKEN[path])
                    value_sets[url] = expander.expand(url)
                    bindings[path] = [url, codes[0]]
                except Unexpandable as exc:
                    skipped[path] = str(exc)
                    bound = False
            keys = raw.setdefault(parent, {})
            if "contentReference" in element:
                keys[name] = element["contentReference"].lstrip("#")
                continue
            if not codes:
                continue
            for code in codes:
                key = name[:-3] + code[:1].upper() + code[1:] if name.endswith("[x]") else name
                if code in CODED and bound:
                    keys[key] = path  # a bound element: checked as the binding of `path`
                elif code in NESTED:
                    keys[key] = path
                elif code in complex_types or code == "Resource" or code in DATES:
                    keys[key] = code
    elements = _prune(raw, bindings)
    return {
        "valueSets": value_sets,
        "bindings": bindings,
        "skipped": skipped,
        "elements": elements,
    }


def _prune(raw: dict[str, dict[str, str]], bindings: dict[str, list[str]]) -> dict[str, Any]:
    """Keep only keys that lead (possibly through nested elements) to a date or a binding."""
    leaves = set(DATES) | {"Resource"} | set(bindings)
    useful: set[str] = set()
    changed = True
    while changed:
        changed = False
        for context, keys in raw.items():
            if context in useful:
                continue
            if any(t in leaves or t in useful for t in keys.values()):
                useful.add(context)
                changed = True
    return {
        context: {k: t for k, t in sorted(keys.items()) if t in leaves or t in useful}
        for context, keys in sorted(raw.items())
        if context in useful
    }


def main(package: Path) -> None:
    data = generate(package)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    OUT.write_text(text + "\n")
    print(
        f"bindings.json: {len(data['bindings'])} required bindings checked "
        f"({len(data['valueSets'])} value sets), {len(data['skipped'])} skipped, "
        f"{len(data['elements'])} typed contexts"
    )
    for path, reason in sorted(data["skipped"].items()):
        print(f"  skipped {path}: {reason}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
