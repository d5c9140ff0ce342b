"""JSON Merge Patch (RFC 7386): objects merge recursively, `null` removes, anything else replaces.
This is what `fhirpy` sends (a partial resource as `application/json`)."""

from __future__ import annotations

from typing import Any


def apply(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply(result.get(key), value)
    return result
