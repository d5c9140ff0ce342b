"""`services.bulk.put_all`: one validated transaction per group, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from santinel.errors import FhirError
from santinel.services import bulk
from santinel.services.container import Container
from santinel.settings import Settings
from santinel.types import ResourceId, ResourceType


def group(prefix: str) -> list[dict[str, Any]]:
    return [
        {"resourceType": "Patient", "id": f"{prefix}-p", "gender": "female"},
        {
            "resourceType": "Observation",
            "id": f"{prefix}-o",
            "status": "final",
            "code": {"text": "weight"},
            "subject": {"reference": f"Patient/{prefix}-p"},
        },
    ]


async def put(settings: Settings, resources: list[dict[str, Any]]) -> bulk.WriteCounts:
    container = await Container.open(settings)
    try:
        return await bulk.put_all(container.repository, resources)
    finally:
        await container.close()


async def exists(settings: Settings, resource_type: str, resource_id: str) -> bool:
    container = await Container.open(settings)
    try:
        stored = await container.repository.read(
            ResourceType(resource_type), ResourceId(resource_id)
        )
        return stored is not None
    finally:
        await container.close()


def test_put_all_creates_then_updates(backend_settings: Settings) -> None:
    prefix = uuid.uuid4().hex[:12]
    assert asyncio.run(put(backend_settings, group(prefix))) == bulk.WriteCounts(2, 0)
    assert asyncio.run(put(backend_settings, group(prefix))) == bulk.WriteCounts(0, 2)


def test_one_invalid_resource_rejects_the_whole_group(backend_settings: Settings) -> None:
    prefix = uuid.uuid4().hex[:12]
    resources = group(prefix)
    resources[1]["status"] = 42
    with pytest.raises(FhirError) as caught:
        asyncio.run(put(backend_settings, resources))
    assert caught.value.diagnostics.startswith(f"Observation/{prefix}-o: ")
    assert not asyncio.run(exists(backend_settings, "Patient", f"{prefix}-p"))


def test_put_all_needs_ids(backend_settings: Settings) -> None:
    with pytest.raises(FhirError, match="needs the id"):
        asyncio.run(put(backend_settings, [{"resourceType": "Patient"}]))
