"""A minimal "browser" for the authorization pages: follows redirects and submits forms the way
a person would (keeping cookies, sending hidden fields, pressing one named button), with httpx.

It stops at the first redirect to the client's redirect URI and returns that URL, as the
client app would receive it, without ever fetching it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin

import httpx

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]] = field(default_factory=list)  # hidden/text/checked inputs
    ids: dict[str, dict[str, str]] = field(default_factory=dict)  # element id → attributes
    radios: list[dict[str, str]] = field(default_factory=list)
    buttons: list[dict[str, str]] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
            return
        if not self.forms or tag not in ("input", "button"):
            return
        form = self.forms[-1]
        if "id" in a:
            form.ids[a["id"]] = a
        kind = a.get("type", "submit" if tag == "button" else "text").lower()
        if kind == "submit":
            form.buttons.append(a)
        elif kind == "radio":
            form.radios.append(a)
        elif kind == "checkbox":
            if "checked" in a and a.get("name"):
                form.fields.append((a["name"], a.get("value", "on")))
        elif a.get("name"):
            form.fields.append((a["name"], a.get("value", "")))


def forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


class PageError(AssertionError):
    pass


@dataclass
class Browser:
    """Cookies persist across requests; each step is recorded (method, URL path, status)."""

    http: httpx.Client
    redirect_uri: str
    steps: list[str] = field(default_factory=list)

    def _send(
        self, method: str, url: str, fields: list[tuple[str, str]] | None = None
    ) -> httpx.Response:
        if fields is None:
            response = self.http.request(method, url)
        else:  # a form, with repeated names (the consent page's scope checkboxes) kept
            response = self.http.request(method, url, content=urlencode(fields), headers=FORM)
        self.steps.append(f"{method} {response.url.path} → {response.status_code}")
        return response

    def authorize(
        self,
        authorize_url: str,
        username: str,
        password: str,
        patient_id: str | None = None,
        decision: str = "approve",
    ) -> str:
        """Log in, pick the patient if asked, answer the consent page: the callback URL."""
        response = self._send("GET", authorize_url)
        for _ in range(12):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(self.redirect_uri):
                    return location
                response = self._send("GET", location)
                continue
            if response.status_code != 200:
                raise PageError(
                    f"{response.status_code} at {response.url.path}: {response.text[:500]}"
                    f" (steps: {self.steps})"
                )
            page = _single_form(response)
            fields = list(page.fields)
            if "username" in page.ids:
                fields = [(k, v) for k, v in fields if k not in ("username", "password")]
                fields += [("username", username), ("password", password)]
                button = page.ids.get("sign-in")
            elif page.radios:
                wanted = f"patient-{patient_id}" if patient_id else page.radios[0].get("id")
                chosen = next((r for r in page.radios if r.get("id") == wanted), None)
                if chosen is None:
                    raise PageError(f"no patient radio {wanted} on {response.url.path}")
                fields.append((chosen["name"], chosen["value"]))
                button = page.ids.get("choose-patient")
            elif "approve" in page.ids:
                button = page.ids.get(decision)
            else:
                raise PageError(f"unexpected page {response.url.path}: {response.text[:500]}")
            if button is None:
                raise PageError(f"no submit button on {response.url.path}")
            if button.get("name"):
                fields.append((button["name"], button.get("value", "")))
            target = urljoin(str(response.url), page.action or str(response.url))
            if page.method == "get":
                response = self._send("GET", f"{target.split('?')[0]}?{urlencode(fields)}")
            else:
                response = self._send("POST", target, fields)
        raise PageError(f"no redirect to the app after {self.steps}")


def _single_form(response: httpx.Response) -> Form:
    found = forms(response.text)
    if len(found) != 1:
        raise PageError(
            f"expected one form at {response.url.path}, found {len(found)}: {response.text[:500]}"
        )
    return found[0]
