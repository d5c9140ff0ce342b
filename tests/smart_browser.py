"""A scripted "browser" for the authorization pages: follows the forms like a person would
(cookies kept, CSRF tokens read from the page), and stops at the redirect to the app."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import ssl
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


@dataclass
class AuthorizationRun:
    """One walk through /oauth/authorize; `pages` keeps every response for assertions."""

    issuer: str
    fhir_base: str
    client_id: str
    redirect_uri: str
    scope: str
    verifier: str = ""
    challenge: str = ""
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    browser: httpx.Client = field(default_factory=lambda: httpx.Client(follow_redirects=False))
    pages: list[httpx.Response] = field(default_factory=list)
    verify: ssl.SSLContext | bool = True  # the token request's TLS trust (`browser` has its own)

    def __post_init__(self) -> None:
        if not self.verifier:
            self.verifier, self.challenge = pkce_pair()

    def params(self, **overrides: str | None) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "aud": self.fhir_base,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update({k: v for k, v in overrides.items() if v is not None})
        return {k: v for k, v in params.items() if overrides.get(k, "") is not None}

    def open(self, **overrides: str | None) -> httpx.Response:
        page = self.browser.get(f"{self.issuer}/oauth/authorize", params=self.params(**overrides))
        self.pages.append(page)
        return page

    def submit(self, path: str, data: dict[str, str | list[str]]) -> httpx.Response:
        csrf = CSRF.search(self.pages[-1].text)
        fields = {**data, "csrf": csrf.group(1) if csrf else ""}
        page = self.browser.post(f"{self.issuer}{path}", data=fields)
        self.pages.append(page)
        return page

    def login(self, username: str, password: str, totp: str = "") -> httpx.Response:
        return self.submit(
            "/oauth/login", {"username": username, "password": password, "totp": totp}
        )

    def approve(self, scopes: list[str] | None = None) -> httpx.Response:
        chosen = (
            scopes
            if scopes is not None
            else re.findall(r'name="scope"[^>]*value="([^"]+)"', self.pages[-1].text)
        )
        return self.submit("/oauth/consent", {"decision": "approve", "scope": chosen})

    def redirect_params(self) -> dict[str, str]:
        """The query of the redirect to the app (the last response must be that redirect)."""
        last = self.pages[-1]
        assert last.status_code == 303, (last.status_code, last.text[:500])
        location = last.headers["location"]
        assert location.startswith(self.redirect_uri)
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def code(self, username: str, password: str) -> str:
        """The whole happy path: open, sign in, approve everything, return the code."""
        self.open()
        self.login(username, password)
        self.approve()
        params = self.redirect_params()
        assert params["state"] == self.state
        return params["code"]

    def exchange(self, code: str, **overrides: str | None) -> httpx.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": self.verifier,
        }
        data.update({k: v for k, v in overrides.items() if v is not None})
        data = {k: v for k, v in data.items() if overrides.get(k, "") is not None}
        return httpx.post(f"{self.issuer}/oauth/token", data=data, verify=self.verify)
