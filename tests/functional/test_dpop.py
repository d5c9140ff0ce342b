"""DPoP (RFC 9449) over real HTTP on both backends: tokens bound to the client's key at the
token endpoint, proofs checked on every resource request, server nonces, refresh tokens of
public clients bound too — and one test per way a proof or a bound token is refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from santinel.crypto.secrets import random_token, token_digest
from santinel.settings import Settings
from tests.auth import BearerAuth
from tests.dpop_client import DpopKey, claims_of
from tests.functional.test_oauth_token import register
from tests.services import LiveServer
from tests.smart_browser import AuthorizationRun

PASSWORD = "correct horse battery staple"
APP = "http://127.0.0.1:9/dpop/callback"


def token_url(server: LiveServer) -> str:
    return f"{server.url}/oauth/token"


def nonce_for(server: LiveServer) -> str:
    """A server nonce: every answer to a request with a `DPoP` header carries the current one."""
    url = f"{server.base}/metadata"
    return httpx.get(url, headers={"DPoP": DpopKey().proof("GET", url)}).headers["DPoP-Nonce"]


@dataclass
class Bound:
    """A client_credentials token bound to `key`, and what it takes to use it."""

    server: LiveServer
    key: DpopKey
    token: str
    nonce: str

    def proof(self, method: str = "GET", path: str = "/Patient", **claims: Any) -> str:
        return self.key.proof(
            method,
            f"{self.server.base}{path}",
            access_token=claims.pop("access_token", self.token),
            nonce=claims.pop("nonce", self.nonce),
            **claims,
        )

    def get(
        self, path: str = "/Patient", *, proof: str | None = None, scheme: str = "DPoP"
    ) -> httpx.Response:
        headers = {"Authorization": f"{scheme} {self.token}"}
        headers["DPoP"] = proof if proof is not None else self.proof("GET", path.split("?")[0])
        return httpx.get(f"{self.server.base}{path}", headers=headers)


def secret_client(settings: Settings, **fields: Any) -> tuple[str, str]:
    secret = random_token()
    record = register(settings, secret_digest=token_digest(secret), **fields)
    return record.client_id, secret


def bound_token(server: LiveServer, key: DpopKey | None = None, **client: Any) -> Bound:
    key = key or DpopKey()
    credentials = secret_client(server.settings, **client)
    url = token_url(server)
    nonce = nonce_for(server)
    answer = httpx.post(
        url,
        headers={"DPoP": key.proof("POST", url, nonce=nonce)},
        data={"grant_type": "client_credentials", "scope": "system/Patient.rs"},
        auth=credentials,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"
    return Bound(server, key, answer.json()["access_token"], nonce)


@pytest.fixture
def bound(server: LiveServer) -> Bound:
    return bound_token(server)


def challenge(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    return response.headers["www-authenticate"]


# -- the happy path -------------------------------------------------------------------------
def test_a_dpop_bound_token_works_with_a_proof_of_its_key(bound: Bound) -> None:
    assert claims_of(bound.token)["cnf"] == {"jkt": bound.key.jkt}
    answer = bound.get()
    assert answer.status_code == 200, answer.text
    assert answer.headers["DPoP-Nonce"]  # the nonce to use next
    assert bound.get("/Patient?_count=1").status_code == 200  # htu never has the query


@pytest.mark.parametrize("alg", ["ES384", "Ed25519", "PS256"])
def test_other_proof_algorithms_work(server: LiveServer, alg: str) -> None:
    assert bound_token(server, DpopKey(alg)).get().status_code == 200


def test_the_token_endpoint_asks_for_a_nonce_first(server: LiveServer) -> None:
    credentials = secret_client(server.settings)
    key, url = DpopKey(), token_url(server)
    form = {"grant_type": "client_credentials", "scope": "system/Patient.rs"}
    first = httpx.post(url, headers={"DPoP": key.proof("POST", url)}, data=form, auth=credentials)
    assert first.status_code == 400
    assert first.json()["error"] == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    proof = key.proof("POST", url, nonce=nonce)
    second = httpx.post(url, headers={"DPoP": proof}, data=form, auth=credentials)
    assert second.status_code == 200, second.text


def test_the_resource_server_asks_for_a_nonce_first(bound: Bound) -> None:
    answer = bound.get(proof=bound.proof(nonce=None))
    assert 'error="use_dpop_nonce"' in challenge(answer)
    assert bound.get(proof=bound.proof(nonce=answer.headers["DPoP-Nonce"])).status_code == 200


def test_a_forged_nonce_is_refused(bound: Bound) -> None:
    forged = "AAAAAA" + bound.nonce[6:]
    assert 'error="use_dpop_nonce"' in challenge(bound.get(proof=bound.proof(nonce=forged)))


def test_discovery_advertises_dpop(server: LiveServer) -> None:
    config = httpx.get(f"{server.base}/.well-known/smart-configuration").json()
    assert "ES256" in config["dpop_signing_alg_values_supported"]
    assert "tls_client_certificate_bound_access_tokens" not in config  # no client CA here


def test_introspection_shows_the_binding(server: LiveServer, bound: Bound) -> None:
    caller = secret_client(server.settings)
    answer = httpx.post(
        f"{server.url}/oauth/introspect", data={"token": bound.token}, auth=caller
    ).json()
    assert answer["active"] is True
    assert answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": bound.key.jkt}


# -- refusals at the resource server --------------------------------------------------------
def test_a_bound_token_without_a_proof_is_refused(bound: Bound) -> None:
    answer = httpx.get(
        f"{bound.server.base}/Patient", headers={"Authorization": f"DPoP {bound.token}"}
    )
    assert 'DPoP error="invalid_dpop_proof"' in challenge(answer)


def test_a_bound_token_used_as_a_bearer_token_is_refused(bound: Bound) -> None:
    assert "invalid_token" in challenge(bound.get(scheme="Bearer"))


def test_a_proof_for_another_method_is_refused(bound: Bound) -> None:
    assert "invalid_dpop_proof" in challenge(bound.get(proof=bound.proof("POST")))


def test_a_proof_for_another_url_is_refused(bound: Bound) -> None:
    assert "invalid_dpop_proof" in challenge(bound.get(proof=bound.proof("GET", "/Observation")))


def test_a_proof_for_another_server_is_refused(bound: Bound) -> None:
    proof = bound.key.proof(
        "GET", "https://elsewhere.example/fhir/Patient", access_token=bound.token, nonce=bound.nonce
    )
    assert "invalid_dpop_proof" in challenge(bound.get(proof=proof))


def test_a_replayed_proof_is_refused(bound: Bound) -> None:
    proof = bound.proof()
    assert bound.get(proof=proof).status_code == 200
    assert "invalid_dpop_proof" in challenge(bound.get(proof=proof))


def test_a_stolen_token_with_the_attackers_key_is_refused(bound: Bound) -> None:
    attacker = DpopKey()
    proof = attacker.proof(
        "GET", f"{bound.server.base}/Patient", access_token=bound.token, nonce=bound.nonce
    )
    assert "invalid_token" in challenge(bound.get(proof=proof))


def test_a_proof_for_another_token_is_refused(bound: Bound) -> None:
    other = bound_token(bound.server, bound.key)
    assert "invalid_dpop_proof" in challenge(bound.get(proof=bound.proof(access_token=other.token)))


def test_a_proof_without_ath_is_refused(bound: Bound) -> None:
    proof = bound.key.proof("GET", f"{bound.server.base}/Patient", nonce=bound.nonce)
    assert "invalid_dpop_proof" in challenge(bound.get(proof=proof))


def test_an_old_proof_is_refused(bound: Bound) -> None:
    old = bound.proof(iat=int(time.time()) - 600)
    assert "invalid_dpop_proof" in challenge(bound.get(proof=old))


def test_a_proof_from_the_future_is_refused(bound: Bound) -> None:
    early = bound.proof(iat=int(time.time()) + 600)
    assert "invalid_dpop_proof" in challenge(bound.get(proof=early))


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda b: b.proof(header={"typ": "JWT"}), id="typ"),
        pytest.param(lambda b: b.proof(jti=None), id="no-jti"),
        pytest.param(lambda b: b.proof(htm=None), id="no-htm"),
        pytest.param(
            lambda b: b.proof(header={"jwk": b.key.key.as_dict(private=True)}), id="private-jwk"
        ),
        pytest.param(
            lambda b: b.proof(header={"jwk": DpopKey().key.as_dict(private=False)}), id="other-jwk"
        ),
        pytest.param(lambda b: b.proof()[:-4] + "AAAA", id="signature"),
        pytest.param(lambda b: "not-a-jwt", id="garbage"),
    ],
)
def test_malformed_proofs_are_refused(bound: Bound, tamper: Callable[[Bound], str]) -> None:
    assert "invalid_dpop_proof" in challenge(bound.get(proof=tamper(bound)))


def test_a_proof_signed_with_hmac_is_refused(bound: Bound) -> None:
    from joserfc import jwt
    from joserfc.jwk import OctKey

    key = OctKey.generate_key(256)
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}
    claims = {
        "jti": "x",
        "htm": "GET",
        "htu": f"{bound.server.base}/Patient",
        "iat": int(time.time()),
    }
    assert "invalid_dpop_proof" in challenge(bound.get(proof=jwt.encode(header, claims, key)))


def test_two_proof_headers_are_refused(bound: Bound) -> None:
    headers = [
        ("Authorization", f"DPoP {bound.token}"),
        ("DPoP", bound.proof()),
        ("DPoP", bound.proof()),
    ]
    answer = httpx.get(f"{bound.server.base}/Patient", headers=headers)
    assert "invalid_dpop_proof" in challenge(answer)


def test_an_unbound_token_with_the_dpop_scheme_is_refused(server: LiveServer) -> None:
    assert isinstance(server.auth, BearerAuth)
    token = server.auth.token()
    url = f"{server.base}/Patient"
    proof = DpopKey().proof("GET", url, access_token=token, nonce=nonce_for(server))
    answer = httpx.get(url, headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    assert "invalid_token" in challenge(answer)


# -- refusals at the token endpoint ---------------------------------------------------------
def test_a_client_that_requires_dpop_gets_no_token_without_a_proof(server: LiveServer) -> None:
    credentials = secret_client(server.settings, require_dpop=True)
    answer = httpx.post(
        token_url(server), data={"grant_type": "client_credentials"}, auth=credentials
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_dpop_proof"
    assert bound_token(server, require_dpop=True).get().status_code == 200


def test_a_token_request_with_a_bad_proof_is_refused(server: LiveServer) -> None:
    credentials = secret_client(server.settings)
    url = token_url(server)
    proof = DpopKey().proof("GET", url, nonce=nonce_for(server))  # wrong htm
    answer = httpx.post(
        url, headers={"DPoP": proof}, data={"grant_type": "client_credentials"}, auth=credentials
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_dpop_proof"


# -- public clients: the code exchange binds the refresh tokens -----------------------------
def code_exchange(server: LiveServer) -> dict[str, str]:
    """A signed-in patient's approval for a public app: the form of its code exchange."""
    from tests.auth import register_public_client, register_user

    patient = httpx.post(
        f"{server.base}/Patient",
        json={"resourceType": "Patient"},
        headers={"Content-Type": "application/fhir+json"},
        auth=server.auth,
    ).json()["id"]
    username = f"dpop-{random_token(6)}"
    register_user(server.settings, username, PASSWORD, f"Patient/{patient}")
    scope = "launch/patient patient/*.rs offline_access"
    app = register_public_client(server.settings, [APP], scope)
    run = AuthorizationRun(server.url, server.base, app, APP, scope)
    return {
        "grant_type": "authorization_code",
        "code": run.code(username, PASSWORD),
        "redirect_uri": APP,
        "client_id": app,
        "code_verifier": run.verifier,
    }


@pytest.fixture
def app_tokens(server: LiveServer) -> tuple[DpopKey, dict[str, Any]]:
    data, key, url = code_exchange(server), DpopKey(), token_url(server)
    first = httpx.post(url, data=data, headers={"DPoP": key.proof("POST", url)})
    assert first.json()["error"] == "use_dpop_nonce"  # and the code is still good:
    proof = key.proof("POST", url, nonce=first.headers["DPoP-Nonce"])
    answer = httpx.post(url, data=data, headers={"DPoP": proof})
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"
    return key, answer.json()


def refresh(server: LiveServer, token: str, proof: str | None) -> httpx.Response:
    headers = {"DPoP": proof} if proof else {}
    data = {"grant_type": "refresh_token", "refresh_token": token}
    return httpx.post(token_url(server), data=data, headers=headers)


def test_a_public_clients_refresh_token_is_bound_to_its_key(
    server: LiveServer, app_tokens: tuple[DpopKey, dict[str, Any]]
) -> None:
    key, tokens = app_tokens
    url = token_url(server)
    nonce = nonce_for(server)
    assert refresh(server, tokens["refresh_token"], None).json()["error"] == "invalid_grant"
    thief = refresh(server, tokens["refresh_token"], DpopKey().proof("POST", url, nonce=nonce))
    assert thief.json()["error"] == "invalid_grant"
    # neither attempt burned the token: its holder still refreshes, and stays bound
    answer = refresh(server, tokens["refresh_token"], key.proof("POST", url, nonce=nonce))
    assert answer.status_code == 200, answer.text
    assert claims_of(answer.json()["access_token"])["cnf"] == {"jkt": key.jkt}
    again = refresh(server, answer.json()["refresh_token"], key.proof("POST", url, nonce=nonce))
    assert again.status_code == 200, again.text


def test_the_first_dpop_refresh_binds_a_grant_that_was_not(server: LiveServer) -> None:
    url = token_url(server)
    tokens = httpx.post(url, data=code_exchange(server)).json()
    assert tokens["token_type"] == "Bearer"
    key, nonce = DpopKey(), nonce_for(server)
    bound = refresh(server, tokens["refresh_token"], key.proof("POST", url, nonce=nonce))
    assert bound.status_code == 200, bound.text
    assert bound.json()["token_type"] == "DPoP"
    next_token = bound.json()["refresh_token"]
    assert refresh(server, next_token, None).json()["error"] == "invalid_grant"
    other = DpopKey().proof("POST", url, nonce=nonce)
    assert refresh(server, next_token, other).json()["error"] == "invalid_grant"
    assert refresh(server, next_token, key.proof("POST", url, nonce=nonce)).status_code == 200
