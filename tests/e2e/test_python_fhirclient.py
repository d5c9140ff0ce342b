"""The SMART on FHIR Python client (`fhirclient`): discovery from the CapabilityStatement, the
authorization-code flow with PKCE (S256) through our login and consent pages, then reads and
searches with its models under the patient's token."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fhirclient import client as smart_client
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRNotFoundException, FHIRPermissionDeniedException
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.auth import register_public_client
from tests.e2e.browser import Browser
from tests.e2e.conftest import Person, SeededPatient
from tests.services import TLS, LiveServer
from tests.smart_browser import pkce_pair

# Never fetched: the browser stops at the redirect and hands its URL to the client library.
REDIRECT = "http://127.0.0.1:9/smart/callback"
SCOPE = "patient/*.rs openid fhirUser offline_access"  # fhirclient prepends launch/patient


@pytest.fixture(scope="module")
def app_id(e2e_server: LiveServer) -> str:
    """A public client (no secret): PKCE is what protects its codes."""
    return register_public_client(e2e_server.settings, [REDIRECT], f"launch/patient {SCOPE}")


@pytest.fixture
def browser() -> Iterator[Browser]:
    with httpx.Client(timeout=30, verify=TLS) as http:
        yield Browser(http, REDIRECT)


def new_smart(server: LiveServer, app_id: str) -> smart_client.FHIRClient:
    settings = {"app_id": app_id, "api_base": server.base, "redirect_uri": REDIRECT}
    return smart_client.FHIRClient(settings={**settings, "scope": SCOPE})


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_discovery_from_the_capability_statement(e2e_server: LiveServer, app_id: str) -> None:
    smart = new_smart(e2e_server, app_id)
    authorize_url = smart.authorize_url  # parses /metadata with the library's strict models
    auth = smart.server.auth
    assert auth is not None
    assert auth.auth_type == "oauth2"
    assert auth._authorize_uri == f"{e2e_server.url}/oauth/authorize"
    assert auth._token_uri == f"{e2e_server.url}/oauth/token"
    assert authorize_url.startswith(f"{e2e_server.url}/oauth/authorize?")
    params = query(authorize_url)
    assert params["code_challenge_method"] == ["S256"]
    assert params["aud"] == [e2e_server.base]
    assert params["scope"] == [f"launch/patient {SCOPE}"]


def test_authorization_code_flow_then_read_and_search(
    e2e_server: LiveServer,
    app_id: str,
    patient: SeededPatient,
    person: Person,
    browser: Browser,
) -> None:
    smart = new_smart(e2e_server, app_id)
    callback = browser.authorize(smart.authorize_url, person.username, person.password)
    assert query(callback)["state"] == [smart.server.auth.auth_state]
    smart.handle_callback(callback)  # code + code_verifier → tokens

    assert smart.ready
    assert smart.patient_id == patient.id  # the user is that patient: no picker
    context = smart.launch_context
    granted = set(context["scope"].split())
    assert {"launch/patient", "openid", "fhirUser", "offline_access"} <= granted
    assert granted & {"patient/*.rs", "patient/*.read"}
    assert smart.server.auth.refresh_token

    record = smart.patient
    assert isinstance(record, Patient)
    assert smart.human_name(record.name[0]) == patient.display

    search = Observation.where(struct={"patient": patient.id}).include("subject")
    found = list(search.perform_resources_iter(smart.server))
    assert sorted(r.id for r in found if r.resource_type == "Observation") == sorted(
        patient.observations
    )
    assert [r.id for r in found if r.resource_type == "Patient"] == [patient.id]
    # Without a filter, the patient compartment still confines the search to this patient.
    every = list(Observation.where(struct={}).perform_resources_iter(smart.server))
    assert {o.subject.reference for o in every} == {f"Patient/{patient.id}"}
    with pytest.raises((FHIRNotFoundException, FHIRPermissionDeniedException)):
        Patient.read(patient.other, smart.server)

    # The library's refresh (grant_type=refresh_token), twice: the rotated token works too.
    for _ in range(2):
        before = smart.server.auth.access_token
        assert smart.reauthorize()
        assert smart.server.auth.access_token != before
        assert Patient.read(patient.id, smart.server).id == patient.id


def test_id_token_identifies_the_user(
    e2e_server: LiveServer, app_id: str, person: Person, browser: Browser
) -> None:
    smart = new_smart(e2e_server, app_id)
    smart.handle_callback(browser.authorize(smart.authorize_url, person.username, person.password))
    id_token = smart.launch_context["id_token"]
    # As an OpenID Connect relying party would: keys and algorithms from discovery.
    discovery = httpx.get(f"{e2e_server.url}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == e2e_server.url
    jwks = httpx.get(discovery["jwks_uri"]).json()
    algorithms = discovery["id_token_signing_alg_values_supported"]
    decoded = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=algorithms)
    claims = decoded.claims
    assert claims["iss"] == e2e_server.url
    assert claims["aud"] in (app_id, [app_id])
    assert claims["sub"]
    assert claims["fhirUser"] in (person.fhir_user, f"{e2e_server.base}/{person.fhir_user}")


def test_deny_reaches_the_app_as_access_denied(
    e2e_server: LiveServer, app_id: str, person: Person, browser: Browser
) -> None:
    smart = new_smart(e2e_server, app_id)
    callback = browser.authorize(
        smart.authorize_url, person.username, person.password, decision="deny"
    )
    assert query(callback)["error"] == ["access_denied"]
    assert query(callback)["state"] == [smart.server.auth.auth_state]
    with pytest.raises(Exception, match="denied"):
        smart.handle_callback(callback)
    assert not smart.ready


def authorize_url(server: LiveServer, app_id: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": app_id,
        "redirect_uri": REDIRECT,
        "scope": f"launch/patient {SCOPE}",
        "state": secrets.token_urlsafe(12),
        "aud": server.base,
        **extra,
    }
    return f"{server.url}/oauth/authorize?{urlencode(params)}"


def test_codes_need_the_pkce_verifier(
    e2e_server: LiveServer, app_id: str, person: Person, browser: Browser
) -> None:
    token_url = f"{e2e_server.url}/oauth/token"
    _verifier, challenge = pkce_pair()  # the right verifier is never sent
    for sent in (None, pkce_pair()[0]):  # no verifier, then someone else's
        url = authorize_url(
            e2e_server, app_id, code_challenge=challenge, code_challenge_method="S256"
        )
        code = query(browser.authorize(url, person.username, person.password))["code"][0]
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": app_id,
        }
        refused = httpx.post(token_url, data=form | ({"code_verifier": sent} if sent else {}))
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] in ("invalid_grant", "invalid_request")
        assert "access_token" not in refused.json()


def test_authorize_without_pkce_is_refused(
    e2e_server: LiveServer, app_id: str, browser: Browser
) -> None:
    for extra in ({}, {"code_challenge": pkce_pair()[1], "code_challenge_method": "plain"}):
        response = browser.http.get(authorize_url(e2e_server, app_id, **extra))
        if response.is_redirect:  # RFC 6749 §4.1.2.1: errors go back to a valid redirect URI
            location = response.headers["location"]
            assert location.startswith(REDIRECT)
            assert query(location)["error"] == ["invalid_request"]
        else:
            assert response.status_code == 400, response.text
            assert 'id="username"' not in response.text
