"""Behind a reverse proxy: the client's address, scheme, host and path prefix come from the
proxy's X-Forwarded-* headers when (and only when) the peer is a trusted proxy; links, Location
headers, the token audience and the SMART configuration then name the public URL.

The test server is reached from 127.0.0.1, a trusted proxy by default (`forwarded_allow_ips`);
the untrusted case runs the same app under settings that trust another network."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from santinel.settings import Settings
from tests.auth import FULL_ACCESS, register_client
from tests.services import TLS, LiveServer

PROXY = {
    "X-Forwarded-For": "203.0.113.7, 127.0.0.1",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "fhir.hospital.example",
    "X-Forwarded-Prefix": "/santinel",
}
PUBLIC_BASE = "https://fhir.hospital.example/santinel/fhir"


@pytest.fixture
def proxied(server: LiveServer) -> Iterator[httpx.Client]:
    """A client going through the proxy: its token is for the public FHIR base."""
    credentials = register_client(server.settings)
    token = httpx.post(
        f"{server.url}/oauth/token",
        auth=credentials,
        data={"grant_type": "client_credentials", "scope": FULL_ACCESS},
        headers=PROXY,
        verify=TLS,
    ).json()["access_token"]
    headers = {**PROXY, "Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base, headers=headers, verify=TLS, timeout=30) as http:
        yield http


def test_links_and_locations_name_the_public_url(proxied: httpx.Client) -> None:
    client = proxied
    created = client.post(
        "/Patient",
        json={"resourceType": "Patient", "name": [{"family": "Forwarded"}]},
        headers=PROXY,
    )
    assert created.status_code == 201
    assert created.headers["location"].startswith(f"{PUBLIC_BASE}/Patient/")
    patient_id = created.headers["location"].split("/Patient/")[1].split("/")[0]

    found = client.get("/Patient", params={"_id": patient_id}, headers=PROXY).json()
    assert found["entry"][0]["fullUrl"] == f"{PUBLIC_BASE}/Patient/{patient_id}"
    assert all(link["url"].startswith(f"{PUBLIC_BASE}/") for link in found["link"])
    # HSTS: the client's connection is HTTPS (the proxy said so)
    read = client.get(f"/Patient/{patient_id}", headers=PROXY)
    assert "strict-transport-security" in read.headers


def test_the_smart_configuration_names_the_public_endpoints(client: httpx.Client) -> None:
    config = client.get("/.well-known/smart-configuration", headers=PROXY).json()
    assert config["token_endpoint"] == "https://fhir.hospital.example/santinel/oauth/token"
    assert config["issuer"] == "https://fhir.hospital.example/santinel"
    assert config["token_endpoint"].startswith("https://fhir.hospital.example/santinel/")


def test_a_token_is_for_the_fhir_base_it_was_issued_for(
    client: httpx.Client, proxied: httpx.Client, server: LiveServer
) -> None:
    """The audience is the FHIR base the client used: a token got directly is refused through
    the proxy, and one got through the proxy is refused directly."""
    assert client.get("/Patient", params={"_count": 1}, headers=PROXY).status_code == 401
    through_proxy = proxied.headers["Authorization"]
    direct = httpx.get(
        f"{server.base}/Patient", headers={"Authorization": through_proxy}, verify=TLS
    )
    assert direct.status_code == 401


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Forwarded-Host", "evil.example/path"),
        ("X-Forwarded-Host", "evil example"),
        ("X-Forwarded-Prefix", "/../admin"),
        ("X-Forwarded-Prefix", "santinel"),
        ("X-Forwarded-Proto", "javascript"),
    ],
)
def test_malformed_forwarded_values_are_ignored(
    client: httpx.Client, header: str, value: str
) -> None:
    answer = client.get("/Patient", params={"_count": 1}, headers={header: value})
    assert answer.status_code == 200
    for link in answer.json()["link"]:
        assert link["url"].startswith(str(client.base_url).rstrip("/")), link


@pytest.fixture(scope="module")
def untrusting_server(backend_settings: Settings) -> Iterator[LiveServer]:
    settings = backend_settings.model_copy(update={"forwarded_allow_ips": "10.99.0.0/16"})
    with LiveServer(settings) as live:
        yield live


def test_an_untrusted_peer_cannot_forge_its_address_or_url(
    untrusting_server: LiveServer,
) -> None:
    with httpx.Client(
        base_url=untrusting_server.base, verify=TLS, auth=untrusting_server.auth, timeout=30
    ) as http:
        answer = http.get("/Patient", params={"_count": 1}, headers=PROXY)
    assert answer.status_code == 200
    for link in answer.json()["link"]:
        assert link["url"].startswith(untrusting_server.base), link
    assert "strict-transport-security" not in answer.headers
