"""Generate `src/santinel/fhir/definitions/structure.json` from the official R4 package: for every
element of every resource and complex datatype, its type and whether it repeats. FHIRPath Patch
uses it to know whether `add` appends to an array or sets a single value.

    python scripts/generate_structure.py .cache/fhir-r4-examples/package
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/santinel/fhir/definitions/structure.json"
NESTED = ("BackboneElement", "Element")


def structure(package: Path) -> dict[str, list[object]]:
    """Element path (`Patient.contact.name`, `HumanName.given`) → [type, repeats]."""
    result: dict[str, list[object]] = {}
    for path in sorted(package.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text())
        if sd.get("derivation") != "specialization" or sd.get("kind") not in (
            "resource",
            "complex-type",
        ):
            continue
        for element in sd["snapshot"]["element"]:
            parts = element["path"].split(".")
            if len(parts) < 2:
                continue
            codes = [t["code"] for t in element.get("type", [])]
            kind = codes[0] if len(codes) == 1 else ("*" if codes else "BackboneElement")
            if kind in NESTED:
                kind = element["path"]  # navigation continues under the element's own path
            result[element["path"]] = [kind, element.get("max") == "*"]
    return result


def main(package: Path) -> None:
    data = structure(package)
    OUT.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"structure.json: {len(data)} elements")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
