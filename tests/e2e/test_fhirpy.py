"""fhirpy (async on aiohttp, sync on requests) against a live Santinel with a bearer token."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from fhirpy import AsyncFHIRClient, SyncFHIRClient
from fhirpy.base.exceptions import AuthorizationError, ResourceNotFound

from tests.auth import BearerAuth
from tests.e2e.conftest import SeededPatient
from tests.services import LiveServer


def bearer(server: LiveServer) -> str:
    assert isinstance(server.auth, BearerAuth)
    return f"Bearer {server.auth.token()}"


def test_async_client_creates_reads_searches_updates_and_deletes(e2e_server: LiveServer) -> None:
    family = f"Hopper{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        client = AsyncFHIRClient(e2e_server.base, authorization=bearer(e2e_server))
        patient = client.resource(
            "Patient",
            name=[{"given": ["Grace"], "family": family}],
            gender="female",
            birthDate="1906-12-09",
        )
        await patient.save()
        assert patient.id
        assert patient["meta"]["versionId"] == "1"

        read = await client.reference("Patient", patient.id).to_resource()
        assert read["name"][0]["family"] == family
        assert read.get_by_path(["name", 0, "given", 0]) == "Grace"

        observation = client.resource(
            "Observation",
            status="final",
            code={"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            subject=patient.to_reference(),
            valueQuantity={"value": 70, "unit": "kg"},
        )
        await observation.save()

        found = await (
            client.resources("Patient")
            .search(family=family, gender="female", birthdate__ge="1900-01-01")
            .fetch_all()
        )
        assert [p.id for p in found] == [patient.id]
        assert await client.resources("Patient").search(family=family, gender="male").fetch() == []
        assert await client.resources("Observation").search(subject=patient.id).count() == 1

        bundle = await (
            client.resources("Observation")
            .search(subject=f"Patient/{patient.id}", code="http://loinc.org|29463-7")
            .include("Observation", "subject")
            .fetch_raw()
        )
        modes = sorted((e.resource.resourceType, e.search.mode) for e in bundle.entry)
        assert modes == [("Observation", "match"), ("Patient", "include")]

        patient["active"] = True
        await patient.save()
        assert patient["meta"]["versionId"] == "2"
        assert (await client.reference("Patient", patient.id).to_resource())["active"] is True

        await observation.delete()
        with pytest.raises(ResourceNotFound):
            await client.reference("Observation", observation.id).to_resource()

    asyncio.run(scenario())


def test_sync_client_reads_and_searches_with_revinclude(
    e2e_server: LiveServer, patient: SeededPatient
) -> None:
    client = SyncFHIRClient(e2e_server.base, authorization=bearer(e2e_server))
    read = client.reference("Patient", patient.id).to_resource()
    assert read["name"][0]["family"] == patient.family

    bundle = (
        client.resources("Patient")
        .search(_id=patient.id)
        .revinclude("Observation", "subject")
        .fetch_raw()
    )
    included = {e.resource.id for e in bundle.entry if e.search.mode == "include"}
    assert included == set(patient.observations)
    observations = client.resources("Observation").search(patient=patient.id).fetch_all()
    assert {o.id for o in observations} == set(patient.observations)


def test_without_or_with_a_bad_token_is_401(e2e_server: LiveServer) -> None:
    anonymous = SyncFHIRClient(e2e_server.base)
    with pytest.raises(AuthorizationError):
        anonymous.resources("Patient").fetch()
    forged = SyncFHIRClient(e2e_server.base, authorization="Bearer not-a-token")
    with pytest.raises(AuthorizationError):
        forged.reference("Patient", "x").to_resource()

    async def async_anonymous() -> None:
        with pytest.raises(AuthorizationError):
            await AsyncFHIRClient(e2e_server.base).resources("Observation").fetch()

    asyncio.run(async_anonymous())
