"""The R4 resource types, as the validator knows them."""

from __future__ import annotations

import fhirkit

RESOURCE_TYPES: frozenset[str] = frozenset(fhirkit.RESOURCE_TYPES)


def is_resource_type(name: str) -> bool:
    return name in RESOURCE_TYPES
