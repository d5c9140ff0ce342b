"""Connection limits of `santinel serve`'s HTTP protocol and the query limits (issue 6):
oversized headers, slow clients, chain depth, query time."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from santinel.settings import Settings
from santinel.web.app import create_app
from santinel.web.http_protocol import server_options
from tests.services import LiveServer

FHIR = {"Accept": "application/fhir+json"}


class HardenedServer(LiveServer):
    """The live test server under the same HTTP options as `santinel serve`."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            lifespan="on",
            server_header=False,
            **server_options(settings),
        )
        self.server = uvicorn.Server(config)
        self.thread.__init__(target=self.server.run, daemon=True)  # type: ignore[misc]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("hardening"),
        max_header_bytes=8192,
        header_timeout_seconds=1.0,
        body_timeout_seconds=1.0,
        max_chain_depth=2,
    )
    with HardenedServer(settings) as live:
        yield live


def raw(server: LiveServer, payload: bytes, pause: float = 0.0, rest: bytes = b"") -> bytes:
    """Send `payload`, wait `pause`, send `rest`; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(payload)
        if pause:
            time.sleep(pause)
        try:
            if rest:
                sock.sendall(rest)
        except OSError:
            pass
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_headers_over_the_limit_are_431_and_the_connection_closes(server: LiveServer) -> None:
    big = b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    assert raw(server, big).startswith(b"HTTP/1.1 431 ")


def test_a_header_far_over_the_limit_is_refused_before_it_is_complete(server: LiveServer) -> None:
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        try:
            sock.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-Big: ")
            while sent < 10_000_000:
                sock.sendall(b"a" * 16384)
                sent += 16384
        except OSError:
            pass  # the server closed the connection while the header was still coming
        with contextlib.suppress(OSError):
            answer = sock.recv(1024)
    assert sent < 10_000_000
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    assert httpx.get(f"{server.base}/metadata", headers=FHIR).status_code == 200


def test_headers_under_the_limit_are_served(server: LiveServer) -> None:
    response = httpx.get(f"{server.base}/metadata", headers={**FHIR, "X-Pad": "a" * 6000})
    assert response.status_code == 200


def test_a_client_sending_its_headers_too_slowly_gets_408(server: LiveServer) -> None:
    started = time.monotonic()
    answer = raw(server, b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n", pause=2.5, rest=b"\r\n")
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 5


def test_a_connection_that_sends_nothing_is_closed(server: LiveServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        started = time.monotonic()
        assert sock.recv(1024).startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 5


def test_a_body_sent_too_slowly_gets_408(server: LiveServer) -> None:
    head = (
        b"POST /fhir/Organization HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    assert raw(server, head, pause=2.5, rest=b"}").startswith(b"HTTP/1.1 408 ")


def test_keep_alive_connections_still_serve_several_requests(server: LiveServer) -> None:
    with httpx.Client(base_url=server.base, headers=FHIR) as http:
        for _ in range(3):
            assert http.get("/metadata").status_code == 200
            time.sleep(0.4)  # idle less than a keep-alive; longer in total than the timeouts


def test_a_chain_deeper_than_the_limit_is_refused(server: LiveServer) -> None:
    with httpx.Client(base_url=server.base, headers=FHIR, auth=server.auth) as http:
        assert (
            http.get("/Observation", params={"subject:Patient.organization.name": "x"}).status_code
            == 200
        )
        deep = http.get("/Observation", params={"subject:Patient.organization.partof.name": "x"})
        assert deep.status_code == 400
        assert deep.json()["resourceType"] == "OperationOutcome"


def test_a_query_over_its_time_budget_is_cancelled_as_too_costly(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, search_timeout_seconds=0.0001)
    with (
        LiveServer(settings) as live,
        httpx.Client(base_url=live.base, headers=FHIR, auth=live.auth, timeout=60) as http,
    ):
        entry = {
            "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "t"}},
            "request": {"method": "POST", "url": "Observation"},
        }
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry] * 1000}
        assert http.post("/", json=bundle).status_code == 200
        params = {"code:text": "t", "_sort": "-_lastUpdated", "_total": "accurate"}
        refused = http.get("/Observation", params=params)
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["code"] == "too-costly"
