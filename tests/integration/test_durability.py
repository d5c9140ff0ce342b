"""The real `santinel serve` process: acknowledged writes survive `kill -9`; logs are safe."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.processes import ServerProcess
from tests.services import postgres_database

HEADERS = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
WRITERS = 4
ACKNOWLEDGED_BEFORE_KILL = 150


@contextmanager
def store_flags(backend: str, tmp_path: Path) -> Iterator[list[str]]:
    if backend == "sqlite":
        yield ["--data-dir", str(tmp_path / "data")]
        return
    with postgres_database() as url:
        yield ["--database-url", url]


class Acknowledged:
    """Every version the server answered 2xx for: (type, id, version) → the body it returned."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.versions: dict[tuple[str, str, str], bytes] = {}

    def add(self, response: httpx.Response) -> dict[str, Any]:
        body: dict[str, Any] = response.json()
        key = (body["resourceType"], body["id"], body["meta"]["versionId"])
        with self.lock:
            self.versions[key] = response.content
        return body

    def __len__(self) -> int:
        with self.lock:
            return len(self.versions)


def keep_writing(
    server: ServerProcess, tag: str, acknowledged: Acknowledged, stop: threading.Event
) -> None:
    """Create patients and update each once, until the server dies under us."""
    with httpx.Client(base_url=server.base, headers=HEADERS, timeout=10, auth=server.auth) as http:
        n = 0
        while not stop.is_set():
            n += 1
            patient = {"resourceType": "Patient", "name": [{"family": f"{tag}-{n}"}]}
            try:
                created = http.post("/Patient", json=patient)
                if created.status_code != 201:
                    return
                body = acknowledged.add(created)
                updated = http.put(
                    f"/Patient/{body['id']}", json={**patient, "id": body["id"], "active": True}
                )
                if updated.status_code != 200:
                    return
                acknowledged.add(updated)
            except httpx.TransportError:
                return  # killed mid-request: that write was never acknowledged


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_every_acknowledged_write_is_readable_after_kill_9_and_restart(
    backend: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    acknowledged = Acknowledged()
    with store_flags(backend, tmp_path) as store:
        server = ServerProcess(store, tmp_path / "first.log")
        with server:
            server.auth.token()  # type: ignore[attr-defined]  # get the token before the race
            stop = threading.Event()
            writers = [
                threading.Thread(target=keep_writing, args=(server, tag, acknowledged, stop))
                for _ in range(WRITERS)
            ]
            for writer in writers:
                writer.start()
            try:
                while len(acknowledged) < ACKNOWLEDGED_BEFORE_KILL:
                    assert any(w.is_alive() for w in writers), server.stderr()
                    stop.wait(0.01)
                server.kill_9()  # while the writers are still sending
            finally:
                stop.set()
                for writer in writers:
                    writer.join(timeout=30)
        assert server.process is not None
        assert server.process.returncode == -9

        with (
            ServerProcess(store, tmp_path / "second.log") as restarted,
            httpx.Client(
                base_url=restarted.base, headers=HEADERS, timeout=10, auth=restarted.auth
            ) as http,
        ):
            lost = []
            for (rtype, rid, version), body in sorted(acknowledged.versions.items()):
                stored = http.get(f"/{rtype}/{rid}/_history/{version}")
                if stored.status_code != 200 or stored.content != body:
                    lost.append(f"{rtype}/{rid}/_history/{version}: {stored.status_code}")
            assert not lost, f"{len(lost)} acknowledged versions lost: {lost[:10]}"
            assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL


@dataclass
class LoggedSession:
    """A server's whole stderr, after requests carrying `marker` in bodies and query strings."""

    marker: str
    request_id: str
    responses: list[httpx.Response]
    stderr: str


@pytest.fixture(scope="module")
def logged_session(tmp_path_factory: pytest.TempPathFactory) -> LoggedSession:
    folder = tmp_path_factory.mktemp("logs")
    marker = f"Zz{uuid.uuid4().hex[:12]}"  # a family name nobody else has
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    server = ServerProcess(["--data-dir", str(folder / "data")], folder / "server.log")
    with (
        server,
        httpx.Client(base_url=server.base, headers=HEADERS, timeout=10, auth=server.auth) as http,
    ):
        patient = {"resourceType": "Patient", "name": [{"family": marker, "given": ["Léa"]}]}
        responses = [
            http.post("/Patient", json=patient, headers={"X-Request-Id": request_id}),
            http.get("/Patient", params={"name": marker}),
            http.get("/Patient", params={"family": marker, "_count": "5"}),
            http.post(
                "/Patient/_search",
                content=f"name={marker}".encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
            # refused bodies echo the bad value in their OperationOutcome, never in the log
            http.post("/Patient", json={**patient, "birthDate": marker}),
            http.post("/Patient", content=f'{{"resourceType": "Patient", "x": "{marker}",'),
            http.get("/metadata"),
        ]
        created = responses[0].json()
        responses += [
            http.put(f"/Patient/{created['id']}", json={**patient, "id": created["id"]}),
            http.get(f"/Patient/{created['id']}", params={"_elements": marker}),
        ]
    server.stop()  # graceful (SIGTERM): every log line is written
    return LoggedSession(marker, request_id, responses, server.stderr())


def test_each_request_is_logged_as_one_json_line_with_its_request_id(
    logged_session: LoggedSession,
) -> None:
    responses = logged_session.responses
    assert responses[0].status_code == 201
    answered_ids = [r.headers["x-request-id"] for r in responses]
    assert answered_ids[0] == logged_session.request_id  # a valid given id is kept
    assert len(set(answered_ids)) == len(answered_ids)
    lines = logged_session.stderr.splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    requests = [r for r in records if r.get("event") == "request"]
    assert [r["request_id"] for r in requests] == answered_ids
    assert [r["status"] for r in requests] == [r.status_code for r in responses]
    for record in requests:
        assert {"request_id", "method", "path", "status", "ms", "level", "timestamp"} <= set(record)


def test_logs_never_carry_resource_bodies_or_query_values(logged_session: LoggedSession) -> None:
    text = logged_session.stderr
    assert logged_session.marker not in text
    assert "Léa" not in text
    assert "L\\u00e9a" not in text
    assert "?" not in "".join(
        json.loads(line)["path"] for line in text.splitlines() if '"path"' in line
    )


def test_every_log_line_after_the_startup_banner_is_json(logged_session: LoggedSession) -> None:
    banner = ("Santinel FHIR base:", "Register a client")
    not_json = []
    for line in logged_session.stderr.splitlines():
        if not line.strip() or line.startswith(banner):
            continue
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)
    assert not not_json, not_json
