"""Security headers over plain HTTP (the loopback test server; HTTPS ones are proven against the
real `santinel serve` in tests/integration/test_transport_security.py)."""

from __future__ import annotations

import httpx
import pytest

from tests.services import LiveServer


def test_personal_data_is_never_cached(client: httpx.Client) -> None:
    created = client.post("/Patient", json={"resourceType": "Patient"})
    assert created.headers["cache-control"] == "no-store"
    for path in (created.headers["location"], "/Patient?_count=1", "/Patient/_history"):
        answer = client.get(path)
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
    assert client.get("/Patient/does-not-exist").headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/fhir/metadata", "/fhir/Patient", "/healthz", "/oauth/token"])
def test_every_answer_has_nosniff_and_no_banner(server: LiveServer, path: str) -> None:
    answer = httpx.get(f"{server.url}{path}")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "server" not in answer.headers


def test_no_hsts_over_plain_http(server: LiveServer) -> None:
    # RFC 6797 §7.2: a UA ignores it there, and a network attacker could forge or strip it
    assert "strict-transport-security" not in httpx.get(f"{server.url}/fhir/metadata").headers
