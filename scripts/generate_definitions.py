"""Generate the compact definitions under `src/santinel/fhir/definitions/` from the official R4
package `hl7.fhir.r4.examples` (run `make examples` first).

    python scripts/generate_definitions.py .cache/fhir-r4-examples/package

Writes `elements.json`: per resource type, its top-level elements (choice elements as `value[x]`)
with whether each is in the summary and whether it is mandatory; `search_parameters.json`: every
official SearchParameter per resource type (see `search_parameters`); `compartments.json`:
compartment → resource type → the parameters linking a resource to the compartment. The output is
committed so the server needs no network and no npm at run time.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "src/santinel/fhir/definitions"


def resource_elements(package: Path) -> dict[str, dict[str, list[str]]]:
    result: dict[str, dict[str, list[str]]] = {}
    for path in sorted(package.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text())
        if sd.get("kind") != "resource" or sd.get("derivation") != "specialization":
            continue
        if sd.get("abstract"):
            continue
        name = sd["type"]
        summary: list[str] = []
        mandatory: list[str] = []
        for element in sd["snapshot"]["element"]:
            parts = element["path"].split(".")
            if len(parts) != 2:
                continue
            if element.get("isSummary"):
                summary.append(parts[1])
            if element.get("min", 0) > 0:
                mandatory.append(parts[1])
        result[name] = {"summary": summary, "mandatory": mandatory}
    return result


# --- search parameters ------------------------------------------------------------------------
# The official set is the bundle `Bundle-searchParams.json` (1,375 definitions, the ones the spec's
# resource pages list). The package also holds 25 loose `SearchParameter-*.json` files outside it:
# experimental extension/example parameters, most without `base` or `expression` (one even a second
# `_id`); only non-experimental ones among them are added (that is `_filter`, a special parameter).
ABSTRACT_BASES = ("Resource", "DomainResource")
# R4 `search.html` parameters that have no SearchParameter resource; none is indexed.
SYNTHETIC = {
    name: {"type": "special", "url": f"http://hl7.org/fhir/R4/search.html#{name[1:]}"}
    for name in ("_has", "_list", "_type")
}
AS_OPERATOR = re.compile(r"\(([A-Za-z%][\w.]*) as (\w+)\)")
AS_FUNCTION = re.compile(r"\.as\((\w+)\)")
# Type names the official expressions misspell (FHIRPath type names are case-sensitive).
TYPE_FIXES = {"DateTime": "dateTime"}
LEADING_NAME = re.compile(r"\(*\s*(\w+)")


def _definitions(package: Path) -> list[dict[str, Any]]:
    bundle = json.loads((package / "Bundle-searchParams.json").read_text())
    found = [entry["resource"] for entry in bundle["entry"]]
    urls = {sp["url"] for sp in found}
    for path in sorted(package.glob("SearchParameter-*.json")):
        sp = json.loads(path.read_text())
        if sp["url"] not in urls and not sp.get("experimental") and sp.get("base"):
            found.append(sp)
    return found


def split_union(expression: str) -> list[str]:
    """The operands of the top-level `|` (not those inside parentheses or strings)."""
    parts: list[str] = []
    depth, start, quoted = 0, 0, False
    for i, char in enumerate(expression):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(expression[start:i].strip())
            start = i + 1
    parts.append(expression[start:].strip())
    return [part for part in parts if part]


def fix_expression(expression: str) -> str:
    """fhirpathpy-ready: `as` (an error on lists) becomes `ofType()`, type names are fixed."""

    def of_type(name: str) -> str:
        return f".ofType({TYPE_FIXES.get(name, name)})"

    fixed = AS_OPERATOR.sub(lambda m: m.group(1) + of_type(m.group(2)), expression)
    fixed = AS_FUNCTION.sub(lambda m: of_type(m.group(1)), fixed)
    if " as " in fixed or ".as(" in fixed:
        raise ValueError(f"cannot rewrite `as` in {expression!r}")
    return fixed


def restrict(expression: str, base: str, bases: list[str]) -> str | None:
    """The operands of a (multi-base) union that apply to `base`, fixed; None when none does."""
    parts = [fix_expression(part) for part in split_union(expression)]
    if base in ABSTRACT_BASES:
        # fhirpathpy does not match `Resource.` against a concrete resource: evaluate from the root.
        parts = [re.sub(rf"^\(*{base}\.", "", part).rstrip(")") for part in parts]
        return " | ".join(parts)
    kept = []
    for part in parts:
        head = LEADING_NAME.match(part)
        name = head.group(1) if head else None
        if name == base or (len(bases) == 1 and name not in bases):
            kept.append(part)
    return " | ".join(kept) or None


def search_parameters(package: Path, types: dict[str, str]) -> dict[str, Any]:
    """{"resourceTypes": {type: "DomainResource" | "Resource"}, "count": n, "params": {base:
    {code: {type, url, expression, target, component, multipleOr, multipleAnd, comparator,
    modifier}}}, "bases": {url: [base, …]}, "anyTarget": [type, …]} where a params `base` is a
    resource type, `Resource` or `DomainResource` (inherited by concrete types). To stay small,
    `bases` lists the bases of multi-base definitions only (others have the one they are under)
    and `"target": "*"` stands for `anyTarget` (every type a Reference may point to)."""
    definitions = _definitions(package)
    by_url = {sp["url"]: sp for sp in definitions}
    any_target = max((sp.get("target", []) for sp in definitions), key=len)
    params: dict[str, dict[str, Any]] = {"Resource": dict(SYNTHETIC)}
    for sp in definitions:
        for base in sp["base"]:
            entry = _entry(sp, base, by_url)
            if entry is not None and entry.get("target") == sorted(any_target):
                entry["target"] = "*"
            if entry is None:
                continue
            codes = params.setdefault(base, {})
            if sp["code"] in codes:
                raise ValueError(f"two definitions of {base} {sp['code']}")
            codes[sp["code"]] = entry
    unknown = set(params) - set(types) - set(ABSTRACT_BASES)
    if unknown:
        raise ValueError(f"search parameters for unknown types {sorted(unknown)}")
    bases = {sp["url"]: sp["base"] for sp in definitions if len(sp["base"]) > 1}
    return {
        "resourceTypes": types,
        "count": len(definitions),
        "params": params,
        "bases": bases,
        "anyTarget": sorted(any_target),
    }


def _entry(sp: dict[str, Any], base: str, by_url: dict[str, Any]) -> dict[str, Any] | None:
    entry: dict[str, Any] = {"type": sp["type"], "url": sp["url"]}
    if sp.get("expression"):
        expression = restrict(sp["expression"], base, sp["base"])
        if expression is None:
            print(f"  no expression for {base} in {sp['id']}: skipped")
            return None
        entry["expression"] = expression
    elif sp["type"] != "special":
        # `_text`, `_content` (full text) and `_query`: no expression, nothing to index.
        entry["type"] = "special"
    if sp.get("target"):
        entry["target"] = sorted(sp["target"])
    if sp.get("component"):
        entry["component"] = _components(sp["component"], by_url)
    for key in ("multipleOr", "multipleAnd", "comparator", "modifier"):
        if key in sp:
            entry[key] = sp[key]
    return entry


def _components(components: list[dict[str, Any]], by_url: dict[str, Any]) -> list[dict[str, str]]:
    """The composite's components; an expression given to the wrong component is moved to the
    one whose definition ends with it (R4's `DocumentReference-relationship` swaps them)."""
    result = []
    for component in components:
        definition = by_url[component["definition"]]
        result.append(
            {
                "code": definition["code"],
                "type": definition["type"],
                "url": definition["url"],
                "expression": fix_expression(component["expression"]),
                "own": definition.get("expression", ""),
            }
        )
    expressions = [c["expression"] for c in result]
    for component in result:
        own = component.pop("own")
        if own.endswith("." + component["expression"]):
            continue
        matching = [e for e in expressions if own.endswith("." + e)]
        if len(matching) == 1:
            print(f"  {component['url']}: component expression {matching[0]!r} (was swapped)")
            component["expression"] = matching[0]
    return result


def compartments(package: Path) -> dict[str, dict[str, list[str]]]:
    """Compartment (`Patient`, `Encounter`, …) → resource type → params (`{def}` left out)."""
    result: dict[str, dict[str, list[str]]] = {}
    for name in ("patient", "encounter", "practitioner", "relatedPerson", "device"):
        definition = json.loads((package / f"CompartmentDefinition-{name}.json").read_text())
        members = result.setdefault(definition["code"], {})
        for resource in definition["resource"]:
            codes = [code for code in resource.get("param", []) if code != "{def}"]
            if codes:
                members[resource["code"]] = codes
    return result


def resource_kinds(package: Path) -> dict[str, str]:
    """Concrete resource type → its parent (`DomainResource`, or `Resource` for Bundle …)."""
    kinds: dict[str, str] = {}
    for path in sorted(package.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text())
        concrete = sd.get("derivation") == "specialization" and not sd.get("abstract")
        if sd.get("kind") == "resource" and concrete:
            kinds[sd["type"]] = sd["baseDefinition"].rsplit("/", 1)[1]
    return kinds


def _write_lines(path: Path, data: dict[str, Any], depth: int) -> None:
    """JSON with one line per entry at `depth` (compact, yet diffs stay readable)."""

    def dump(value: Any, level: int) -> str:
        if level == depth or not isinstance(value, dict):
            return json.dumps(value, sort_keys=True, separators=(",", ":"))
        pad = "\n" + " " * level
        items = [f"{json.dumps(k)}:{dump(v, level + 1)}" for k, v in sorted(value.items())]
        return "{" + pad + ("," + pad).join(items) + "\n" + " " * max(0, level - 1) + "}"

    path.write_text(dump(data, 0) + "\n")


def main(package: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    elements = resource_elements(package)
    (OUT / "elements.json").write_text(json.dumps(elements, indent=0, sort_keys=True) + "\n")
    print(f"elements.json: {len(elements)} resource types")
    search = search_parameters(package, resource_kinds(package))
    _write_lines(OUT / "search_parameters.json", search, 3)
    entries = sum(len(codes) for codes in search["params"].values())
    print(f"search_parameters.json: {search['count']} definitions, {entries} (base, code) entries")
    groups = compartments(package)
    _write_lines(OUT / "compartments.json", groups, 2)
    print(f"compartments.json: {', '.join(f'{k} ({len(v)} types)' for k, v in groups.items())}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
