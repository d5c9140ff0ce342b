"""The JavaScript SMART client (`fhirclient`, npm) in headless Chromium: a standalone launch with
PKCE from an app on another origin (so CORS is exercised), a person signing in on our login page
and approving, then the app reading its patient, searching, and refreshing its token.

Needs node, `tests/e2e/js/node_modules` (`make pytest` runs `npm ci`) and Debian's Chromium:
skipped without them on a laptop, failed in CI (SANTINEL_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.auth import register_public_client
from tests.e2e.conftest import Person, SeededPatient
from tests.services import LiveServer, service_missing

HERE = Path(__file__).parent
JS = HERE / "js"
APP = HERE / "app"
CHROMIUM = os.environ.get("SANTINEL_CHROMIUM", "/usr/bin/chromium")
SCRIPT_TIMEOUT = 60


@dataclass
class App:
    """The SMART app's static files, served from their own origin."""

    origin: str
    client_id: str

    @property
    def launch_url(self) -> str:
        return f"{self.origin}/launch.html"


def _handler(files: dict[str, tuple[bytes, str]], csp: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = files.get(self.path.split("?", 1)[0])
            if found is None:
                self.send_response(404 if self.path != "/favicon.ico" else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body, media = found
            self.send_response(200)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy", csp)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def node() -> str:
    """Checked before the server starts: a laptop without the tools skips at once."""
    node = shutil.which("node")
    if node is None:
        service_missing("node")
    if not (JS / "node_modules" / "playwright-core").is_dir():
        service_missing(f"{JS}/node_modules (`make pytest` installs it with npm ci)")
    if not os.access(CHROMIUM, os.X_OK):
        service_missing(f"Chromium at {CHROMIUM} (Debian package `chromium`)")
    return str(node)


@pytest.fixture(scope="module")
def app(node: str, e2e_server: LiveServer) -> Iterator[App]:
    files: dict[str, tuple[bytes, str]] = {
        f"/{p.name}": (p.read_bytes(), "text/html" if p.suffix == ".html" else "text/javascript")
        for p in APP.iterdir()
    }
    bundle = JS / "node_modules" / "fhirclient" / "build" / "fhir-client.js"
    files["/fhir-client.js"] = (bundle.read_bytes(), "text/javascript")
    # No inline script, no eval, and connections only to the FHIR server: what a real SMART
    # app's CSP would allow.
    csp = f"default-src 'self'; connect-src {e2e_server.url}; frame-ancestors 'none'"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(files, csp))
    origin = f"http://127.0.0.1:{httpd.server_address[1]}"
    client_id = register_public_client(
        e2e_server.settings,
        [f"{origin}/index.html"],
        "launch/patient patient/*.rs openid fhirUser offline_access",
    )
    config = {"iss": e2e_server.base, "clientId": client_id}
    files["/config.js"] = (f"window.E2E = {json.dumps(config)};\n".encode(), "text/javascript")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield App(origin, client_id)
    finally:
        httpd.shutdown()
        httpd.server_close()


def run_launch(node: str, app: App, person: Person, patient: SeededPatient) -> dict[str, Any]:
    env = {
        **os.environ,
        "CHROMIUM": CHROMIUM,
        "E2E_USERNAME": person.username,
        "E2E_PASSWORD": person.password,
        "E2E_PATIENT": patient.id,
    }
    # Its own process group: on a time-out, Chromium goes down with node.
    with subprocess.Popen(
        [node, str(JS / "standalone_launch.mjs"), app.launch_url],
        cwd=JS,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=SCRIPT_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"the browser script did not finish in {SCRIPT_TIMEOUT} s")
    assert process.returncode == 0, stderr[-2000:]
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


def test_standalone_launch_with_pkce_reads_the_patient(
    node: str, e2e_server: LiveServer, app: App, person: Person, patient: SeededPatient
) -> None:
    result = run_launch(node, app, person, patient)
    summary = json.dumps(result, indent=1)
    assert "exception" not in result, summary
    assert result["patient_name"] == patient.display, summary
    assert result["patient_id"] == patient.id
    assert result["fhir_user"] in (person.fhir_user, f"{e2e_server.base}/{person.fhir_user}")
    assert result["observations"] == str(len(patient.observations)), summary  # only theirs
    assert not result.get("picker"), "a user who is a patient must not be asked to pick one"
    assert result["pages"][0] == app.launch_url
    assert result["pages"][-1] == f"{app.origin}/index.html"

    # PKCE: an S256 challenge on the way out, the verifier with the code on the way back.
    assert result["authorize"]["code_challenge_method"] == "S256"
    assert result["authorize"]["has_code_challenge"] is True
    assert result["authorize"]["aud"] == e2e_server.base
    first, *later = result["tokenRequests"]
    assert first == {
        "grant_type": "authorization_code",
        "has_code_verifier": True,
        "client_id_sent": True,
        "origin": app.origin,
    }
    # CORS: the app's origin (that of a registered redirect URI) may read the token responses;
    # discovery, the reads and the search (with their preflights) went through.
    assert result["tokenResponses"][0] == {"status": 200, "allow_origin": app.origin}
    assert result["failed"] == [], summary
    blocked = [m for m in result["console"] if "CORS" in m or "Content Security Policy" in m]
    assert blocked == [], summary

    # The library's own refresh (grant_type=refresh_token, no client_id: a public client is
    # known by its refresh token, RFC 6749 §6), then a read with the new access token.
    assert [r["grant_type"] for r in later] == ["refresh_token"], summary
    assert result["error"] == "", summary
    assert result["refreshed"] == "yes", summary
    assert result["tokenResponses"][1] == {"status": 200, "allow_origin": app.origin}
