"""Generate the compact definitions under `src/santinel/fhir/definitions/` from the official R4
package `hl7.fhir.r4.examples` (run `make examples` first).

    python scripts/generate_definitions.py .cache/fhir-r4-examples/package

Writes `elements.json`: per resource type, its top-level elements (choice elements as `value[x]`)
with whether each is in the summary and whether it is mandatory. The output is committed so the
server needs no network and no npm at run time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

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


def main(package: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    elements = resource_elements(package)
    (OUT / "elements.json").write_text(json.dumps(elements, indent=0, sort_keys=True) + "\n")
    print(f"elements.json: {len(elements)} resource types")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
