"""Project vocabulary: distinct types for identifiers so one is never passed for another."""

from __future__ import annotations

from typing import NewType

ResourceType = NewType("ResourceType", str)
ResourceId = NewType("ResourceId", str)
VersionId = NewType("VersionId", int)
RequestId = NewType("RequestId", str)
