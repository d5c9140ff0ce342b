"""The logs of a real `santinel serve` process hold no health data and no secret.

A workload full of markers — a patient's names, INS/NIR and hospital identifiers, birth date,
phone and address, in bodies, query strings, form bodies and headers; passwords (right and
wrong), client secrets, access, refresh and id tokens, an authorization code and a PKCE
verifier; refused, malformed and unauthenticated requests — then the whole log file (the
server's stderr) is searched for every one of them: none may appear. Every line is JSON
(after the startup banner), and every request log line carries the request's id.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from santinel.settings import Settings
from tests.auth import register_public_client, register_user
from tests.integration.processes import ServerProcess
from tests.services import postgres_database
from tests.smart_browser import AuthorizationRun

HEADERS = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
APP = "http://127.0.0.1:9/app/callback"
BANNER = ("Santinel FHIR base:", "Register a client")
NIR_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
IPP_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"


@dataclass
class Markers:
    """Values that must never reach a log: health data, then secrets."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def __post_init__(self) -> None:
        draw = random.Random(self.tag)
        self.family = f"Zqfamille{self.tag}"
        self.given = f"Zqprenom{self.tag}"
        self.nir = "2" + "".join(draw.choice("0123456789") for _ in range(14))
        self.ipp = f"IPP{self.tag.upper()}"
        self.birth_date = f"19{draw.randint(10, 40)}-0{draw.randint(1, 9)}-1{draw.randint(1, 9)}"
        self.phone = "06" + "".join(draw.choice("0123456789") for _ in range(8))
        self.street = f"12 rue Zqrue{self.tag}"
        self.username = f"zqutilisateur{self.tag}"
        self.password = f"Zqmotdepasse-{secrets.token_hex(8)}"
        self.wrong_password = f"Zqfaux-{self.family}-{secrets.token_hex(4)}"
        self.secrets: list[str] = []  # tokens, secrets, codes: added as the workload makes them

    def health_data(self) -> list[str]:
        return [
            self.family,
            self.given,
            self.nir,
            self.ipp,
            self.birth_date,
            self.phone,
            self.street,
            "Zqrue",
        ]

    def patient(self) -> dict[str, object]:
        return {
            "resourceType": "Patient",
            "identifier": [
                {"system": NIR_SYSTEM, "value": self.nir},
                {"system": IPP_SYSTEM, "value": self.ipp},
            ],
            "name": [{"family": self.family, "given": [self.given]}],
            "birthDate": self.birth_date,
            "telecom": [{"system": "phone", "value": self.phone}],
            "address": [{"line": [self.street], "city": "Lyon"}],
        }


@dataclass
class Session:
    markers: Markers
    fhir_request_ids: list[str | None]  # the X-Request-Id of every FHIR answer
    log: str


def fhir_workload(http: httpx.Client, m: Markers) -> list[httpx.Response]:
    patient = m.patient()
    answers = [
        http.post("/Patient", json=patient),
        http.post(  # conditional create: the identifier travels in a header
            "/Patient", json=patient, headers={"If-None-Exist": f"identifier={m.nir}"}
        ),
    ]
    pid = answers[0].json()["id"]
    answers += [
        http.get(f"/Patient/{pid}"),
        http.get("/Patient", params={"name": m.family}),
        http.get("/Patient", params={"family": m.family, "given": m.given}),
        http.get("/Patient", params={"identifier": f"{NIR_SYSTEM}|{m.nir}"}),
        http.get("/Patient", params={"identifier": m.ipp, "birthdate": m.birth_date}),
        http.get("/Patient", params={"telecom": m.phone, "address": m.street}),
        http.post(
            "/Patient/_search",
            content=f"name={m.family}&identifier={m.nir}".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        http.put(f"/Patient?identifier={NIR_SYSTEM}|{m.nir}", json={**patient, "active": True}),
        http.get("/Observation", params={"subject:Patient.name": m.family}),
        # refused: the marker in the body comes back in the OperationOutcome, not in the log
        http.post("/Patient", json={**patient, "birthDate": f"{m.birth_date}x{m.family}"}),
        http.post("/Patient", content=f'{{"resourceType": "Patient", "x": "{m.nir}",'.encode()),
        http.post("/Observation", json={"resourceType": "Observation", "note": m.street}),
        http.get(f"/Patient/{pid}", params={"_elements": m.family}),
    ]
    return answers


def bad_credentials(server: ServerProcess, m: Markers) -> list[httpx.Response]:
    forged = f"eyJhbGciOiJFUzI1NiJ9.{m.family}.{m.nir}"
    return [
        httpx.get(f"{server.base}/Patient", params={"name": m.family}),  # no token
        httpx.get(f"{server.base}/Patient", headers={"Authorization": f"Bearer {forged}"}),
        httpx.get(f"{server.base}/Patient", params={"access_token": forged}),
        httpx.post(
            f"{server.url}/oauth/token",
            auth=(server.auth.credentials[0], f"wrong-{m.family}"),  # type: ignore[attr-defined]
            data={"grant_type": "client_credentials"},
        ),
    ]


def sign_in(server: ServerProcess, settings: Settings, m: Markers, pid: str) -> str:
    """The SMART authorization code flow of a patient user, with a wrong password first;
    returns the patient's access token (every secret it meets is added to the markers)."""
    client_id = register_public_client(
        settings, [APP], "launch/patient patient/*.rs openid fhirUser offline_access"
    )
    register_user(settings, m.username, m.password, f"Patient/{pid}")
    run = AuthorizationRun(
        server.url,
        server.base,
        client_id,
        APP,
        "launch/patient patient/*.rs openid fhirUser offline_access",
    )
    run.open()
    refused = run.login(m.username, m.wrong_password)
    assert refused.status_code in (200, 400, 401)
    run.login(m.username, m.password)
    run.approve()
    code = run.redirect_params()["code"]
    tokens = run.exchange(code).json()
    refreshed = httpx.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": client_id,
        },
    ).json()
    m.secrets += [
        code,
        run.verifier,
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["id_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
    ]
    return str(tokens["access_token"])


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    folder = tmp_path_factory.mktemp("phi-logs")
    data = folder / "data"
    server = ServerProcess(["--data-dir", str(data)], folder / "server.log")
    m = Markers()
    answers: list[httpx.Response] = []
    with server:
        with httpx.Client(
            base_url=server.base, headers=HEADERS, timeout=30, auth=server.auth
        ) as http:
            answers += fhir_workload(http, m)
            m.secrets += [server.auth.token(), server.auth.credentials[1]]  # type: ignore[attr-defined]
            pid = answers[0].json()["id"]
        answers += bad_credentials(server, m)
        token = sign_in(server, Settings(data_dir=data), m, pid)
        patient_view = httpx.get(
            f"{server.base}/Patient/{pid}", headers={**HEADERS, "Authorization": f"Bearer {token}"}
        )
        assert patient_view.status_code == 200
        answers.append(patient_view)
        assert answers[0].status_code == 201
        assert any(a.status_code in (400, 422) for a in answers)
        assert any(a.status_code == 401 for a in answers)
    server.stop()  # graceful: every line written
    ids = [a.headers.get("x-request-id") for a in answers if a.url.path.startswith("/fhir")]
    return Session(m, ids, server.stderr())


def test_no_health_data_in_the_logs(session: Session) -> None:
    found = [marker for marker in session.markers.health_data() if marker in session.log]
    assert found == []
    escaped = session.markers.family.encode("unicode_escape").decode()
    assert escaped not in session.log


def test_no_secret_in_the_logs(session: Session) -> None:
    m = session.markers
    values = [*m.secrets, m.password, m.wrong_password, m.username]
    assert len(m.secrets) >= 9
    leaked = [value[:12] + "…" for value in values if value in session.log]
    assert leaked == []
    # not even a recognisable piece of a token (a JWT's signature or payload segment)
    pieces = [p for s in m.secrets for p in s.split(".") if len(p) >= 16]
    assert [p[:12] for p in pieces if p in session.log] == []


def test_every_line_is_json_and_request_lines_carry_their_request_id(session: Session) -> None:
    records = []
    for line in session.log.splitlines():
        if not line.strip() or line.startswith(BANNER):
            continue
        records.append(json.loads(line))  # fails on any line that is not JSON
    requests = [r for r in records if r.get("event") == "request"]
    assert requests
    for record in requests:
        assert record.get("request_id"), record
        assert "?" not in record["path"]
    logged = {r["request_id"] for r in requests}
    assert None not in session.fhir_request_ids
    assert set(session.fhir_request_ids) <= logged


async def _refuse_name_index_writes(url: str) -> None:
    """Inserts into the name index fail (a full disk, a broken replica): a server error."""
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'index unavailable'; END $$ LANGUAGE plpgsql"
        )
        await connection.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON search_string "
            "FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
    finally:
        await connection.close()


def test_a_failed_database_statement_is_logged_without_its_values(tmp_path: Path) -> None:
    """An unexpected database error is logged with its traceback, in which SQLAlchemy would
    print the failed statement's values: names in clear here (`plaintext_name_indexes`)."""
    m = Markers()
    with postgres_database() as url:
        flags = ["--database-url", url, "--data-dir", str(tmp_path / "data")]
        env = {"SANTINEL_PLAINTEXT_NAME_INDEXES": "true"}
        server = ServerProcess(flags, tmp_path / "server.log", env=env)
        with (
            server,
            httpx.Client(
                base_url=server.base, headers=HEADERS, timeout=30, auth=server.auth
            ) as http,
        ):
            assert http.get("/metadata").status_code == 200
            asyncio.run(_refuse_name_index_writes(url))
            failed = http.post("/Patient", json=m.patient())
            assert failed.status_code == 500
        server.stop()
    log = server.stderr()
    assert "unhandled error" in log  # the traceback is there, for the operator
    assert [marker for marker in m.health_data() if marker in log] == []
