"""JSON Patch (RFC 6902) with the `jsonpatch` library."""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer

from santinel.errors import BadRequest, UnprocessableEntity


def apply(resource: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise BadRequest("A JSON Patch is a JSON array of operation objects (RFC 6902).")
    try:
        patch = jsonpatch.JsonPatch(operations)
        result = patch.apply(resource)
    except jsonpatch.JsonPatchTestFailed as exc:
        raise UnprocessableEntity(
            f"A JSON Patch test failed: {exc}.", issue_code="conflict"
        ) from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise UnprocessableEntity(f"The JSON Patch cannot be applied: {exc}.") from None
    except (TypeError, KeyError, ValueError) as exc:
        raise BadRequest(f"The JSON Patch is malformed ({type(exc).__name__}).") from None
    if not isinstance(result, dict):
        raise UnprocessableEntity("The JSON Patch does not leave a resource.")
    return result
