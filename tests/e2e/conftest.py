"""End-to-end fixtures: one live server (SQLite: real clients test the protocol, not storage),
a seeded patient with observations, and a person who logs in as that patient."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from santinel.settings import Settings
from tests.auth import register_user
from tests.services import TLS, LiveServer

FHIR_JSON = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}


@dataclass(frozen=True)
class SeededPatient:
    id: str
    given: str
    family: str
    observations: tuple[str, ...]
    other: str  # another patient, outside this one's compartment

    @property
    def display(self) -> str:
        return f"{self.given} {self.family}"


@dataclass(frozen=True)
class Person:
    username: str
    password: str
    fhir_user: str


@pytest.fixture(scope="session")
def e2e_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("e2e"), max_body_bytes=1024 * 1024)
    with LiveServer(settings) as live:
        yield live


@pytest.fixture(scope="session")
def admin(e2e_server: LiveServer) -> Iterator[httpx.Client]:
    """Full access (client_credentials, system/*.cruds): writes the seed data."""
    with httpx.Client(
        base_url=e2e_server.base, headers=FHIR_JSON, timeout=30, verify=TLS, auth=e2e_server.auth
    ) as http:
        yield http


@pytest.fixture(scope="session")
def patient(admin: httpx.Client) -> SeededPatient:
    """A patient (server-assigned id) and two observations about them, plus one about someone
    else that a patient-scoped token must never see."""
    mark = uuid.uuid4().hex[:8]
    given, family = "Ada", f"Lovelace{mark}"
    created = admin.post(
        "/Patient",
        json={"resourceType": "Patient", "name": [{"given": [given], "family": family}]},
    )
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    other = admin.post("/Patient", json={"resourceType": "Patient", "name": [{"family": "Other"}]})
    assert other.status_code == 201, other.text
    observations = []
    for subject, code in ((pid, "8867-4"), (pid, "8310-5"), (other.json()["id"], "8867-4")):
        response = admin.post(
            "/Observation",
            json={
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": f"Patient/{subject}"},
                "valueQuantity": {"value": 60, "unit": "/min"},
            },
        )
        assert response.status_code == 201, response.text
        if subject == pid:
            observations.append(response.json()["id"])
    return SeededPatient(pid, given, family, tuple(observations), other.json()["id"])


@pytest.fixture(scope="session")
def person(e2e_server: LiveServer, patient: SeededPatient) -> Person:
    """A user account whose fhirUser is the seeded patient (so no patient picker is shown)."""
    username = f"ada-{uuid.uuid4().hex[:8]}"
    password = secrets.token_urlsafe(18)
    fhir_user = f"Patient/{patient.id}"
    register_user(e2e_server.settings, username, password, fhir_user=fhir_user)
    return Person(username, password, fhir_user)
