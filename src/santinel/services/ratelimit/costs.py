"""What a FHIR interaction costs in quota units (pure: no I/O).

Defaults: read 1, search 2 plus 1 per `_include`/`_revinclude`, write 5, batch and transaction
per entry (5 per write entry, 1 per read entry), `$everything` 20, `$export` 50. Operators
change any of them with `rate_limit_costs` (`search=3,write=10`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

import orjson

from santinel.services.dispatch import ROUTES, path_shape

READS = frozenset({"read", "vread", "capabilities"})
SEARCHES = frozenset(
    {"search-type", "search-system", "search-compartment"}
    | {"history-instance", "history-type", "history-system"}
)
ENTRY_READS = frozenset({"GET", "HEAD"})
OVERRIDE = re.compile(r"\s*([a-z_]+)\s*=\s*([0-9]{1,6})\s*")


@dataclass(frozen=True)
class Costs:
    read: int = 1
    search: int = 2
    include: int = 1  # per _include / _revinclude parameter of a search
    write: int = 5
    entry_read: int = 1  # per GET entry of a batch or transaction
    entry_write: int = 5  # per other entry
    everything: int = 20  # an `$everything` operation
    export: int = 50  # a `$export` operation

    @classmethod
    def parse(cls, text: str) -> Costs:
        """The defaults with `name=N,…` overrides; an unknown name or a bad number is refused."""
        known = {f.name for f in fields(cls)}
        changes: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            match = OVERRIDE.fullmatch(part)
            if match is None or match.group(1) not in known:
                raise ValueError(
                    f"{part[:40]!r} is not a cost: write name=N with a name among "
                    f"{', '.join(sorted(known))}."
                )
            changes[match.group(1)] = int(match.group(2))
        return replace(cls(), **changes)


def interaction_of(method: str, path: tuple[str, ...]) -> str | None:
    """The R4 interaction a method and path name (the same table `FhirService` routes by)."""
    if path and path[-1].startswith("$"):
        return "operation"
    return ROUTES.get((path_shape(path), method))


def request_cost(
    costs: Costs,
    method: str,
    path: tuple[str, ...],
    params: tuple[tuple[str, str], ...],
    body: bytes,
) -> int:
    interaction = interaction_of(method, path)
    if interaction == "operation":
        return _operation_cost(costs, path[-1])
    if interaction == "transaction":
        return bundle_cost(costs, body)
    if interaction in SEARCHES:
        includes = sum(1 for name, _ in params if name.startswith(("_include", "_revinclude")))
        return costs.search + costs.include * includes
    if interaction is None or interaction in READS:
        return costs.read
    return costs.write


def bundle_cost(costs: Costs, body: bytes) -> int:
    """Per entry: a read entry (GET, HEAD) or a write entry; an unreadable Bundle costs one
    write (the service refuses it)."""
    try:
        bundle = orjson.loads(body)
        entries = bundle.get("entry") if isinstance(bundle, dict) else None
    except orjson.JSONDecodeError:
        entries = None
    if not isinstance(entries, list):
        return costs.write
    total = 0
    for entry in entries:
        request = entry.get("request") if isinstance(entry, dict) else None
        method = request.get("method") if isinstance(request, dict) else None
        total += costs.entry_read if method in ENTRY_READS else costs.entry_write
    return max(total, costs.read)


def _operation_cost(costs: Costs, name: str) -> int:
    if name == "$everything":
        return costs.everything
    if name == "$export":
        return costs.export
    return costs.write
