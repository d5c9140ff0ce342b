"""The real `santinel serve` on its default transport, HTTPS, with mutual TLS on: which TLS
versions and suites it accepts (Python `ssl` clients; each refusal beside a control server with
the same certificate that accepts the very same client, so the refusal is the server's), the
development CA it prints, its security headers, and certificate-bound tokens (RFC 8705)."""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from santinel.crypto.certificates import Issued, new_ca, new_client_certificate, pem_thumbprint
from tests.dpop_client import claims_of
from tests.integration.processes import ServerProcess, run_santinel

PRINTED_CA = re.compile(r"curl --cacert (\S+)")
LEGACY = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")


@dataclass
class Partner:
    client_id: str
    secret: str
    cert: Path
    key: Path


@dataclass
class World:
    server: ServerProcess
    ca_file: Path  # as printed by the server
    partner: Partner
    other_cert: tuple[Path, Path]  # same client CA, another certificate
    stranger_cert: tuple[Path, Path]  # a certificate of another CA


def _write(folder: Path, name: str, issued: Issued) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}-key.pem"
    cert.write_bytes(issued.cert_pem)
    key.write_bytes(issued.key_pem)
    return cert, key


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("transport")
    data = str(folder / "data")
    client_ca = new_ca("partners CA")
    ca_file, _ = _write(folder, "client-ca", client_ca)
    cert, key = _write(folder, "partner", new_client_certificate(client_ca, "partner"))
    other = _write(folder, "other", new_client_certificate(client_ca, "other"))
    stranger = _write(folder, "stranger", new_client_certificate(new_ca("elsewhere"), "partner"))
    added = run_santinel(
        *("clients", "add", "--name", "partner", "--tier", "partner", "--scope", "system/*.rs"),
        *("--secret", "--cert-file", str(cert), "--json", "--data-dir", data),
    )
    assert added.returncode == 0, added.stderr
    shown = json.loads(added.stdout)
    assert shown["cert_thumbprint"] == pem_thumbprint(cert.read_bytes())
    partner = Partner(shown["client_id"], shown["client_secret"], cert, key)
    extra = ["--client-ca", str(ca_file)]
    with ServerProcess(["--data-dir", data], folder / "serve.log", tls=True, extra=extra) as server:
        printed = PRINTED_CA.search(server.stderr())
        assert printed is not None, server.stderr()
        yield World(server, Path(printed.group(1)), partner, other, stranger)


def handshake(port: int, context: ssl.SSLContext, host: str = "127.0.0.1") -> tuple[str, str]:
    """(TLS version, cipher suite) of a completed handshake."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        version, cipher = tls.version(), tls.cipher()
        assert version is not None
        assert cipher is not None
        return version, cipher[0]


def client_context(
    version: ssl.TLSVersion, ciphers: str | None = None, ca: Path | None = None
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cafile=ca)
    context.minimum_version = context.maximum_version = version
    if ciphers:
        context.set_ciphers(ciphers)
    return context


@pytest.fixture(scope="module")
def control(world: World) -> Iterator[int]:
    """A permissive TLS server (TLS 1.0 up, every suite) with Santinel's own certificate."""
    tls = world.ca_file.parent
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with pytest.warns(DeprecationWarning, match="TLSv1"):
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.load_cert_chain(tls / "server.pem", tls / "server-key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(connection, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    thread.join(timeout=5)


# -- versions, suites, certificate ----------------------------------------------------------
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_tls_1_2_and_1_3_handshakes_verify_against_the_printed_ca(
    world: World, version: ssl.TLSVersion, host: str
) -> None:
    context = client_context(version, ca=world.ca_file)
    negotiated, cipher = handshake(world.server.port, context, host)
    assert (
        negotiated
        == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    )
    assert "GCM" in cipher or "CHACHA20" in cipher


def test_the_certificate_does_not_verify_without_the_ca(world: World) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(world.server.port, ssl.create_default_context())


@LEGACY
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_1_0_and_1_1_are_refused(world: World, control: int, version: str) -> None:
    legacy = client_context(ssl.TLSVersion[version], "ALL:@SECLEVEL=0")
    assert handshake(control, legacy)[0].startswith("TLSv1")  # the client can speak it
    with pytest.raises(ssl.SSLError):
        handshake(world.server.port, legacy)


@pytest.mark.parametrize(
    "suite", ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-ECDSA-AES128-SHA256"]
)
def test_cbc_suites_are_refused(world: World, control: int, suite: str) -> None:
    client = client_context(ssl.TLSVersion.TLSv1_2, suite)
    assert handshake(control, client)[1] == suite  # the control server accepts it
    with pytest.raises(ssl.SSLError):
        handshake(world.server.port, client)


def test_every_tls_1_2_suite_offered_is_ecdhe_and_aead(world: World) -> None:
    from santinel.web.tls import server_context

    tls = world.ca_file.parent
    offered = server_context(tls / "server.pem", tls / "server-key.pem").get_ciphers()
    tls12 = [s for s in offered if s["protocol"] == "TLSv1.2"]
    assert tls12
    assert all(s["kea"] == "kx-ecdhe" and s["aead"] for s in tls12), tls12


def test_https_responses_carry_hsts_and_no_banner(world: World) -> None:
    answer = httpx.get(f"{world.server.base}/metadata", verify=world.server.verify())
    assert answer.status_code == 200
    assert answer.headers["strict-transport-security"] == "max-age=31536000"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "server" not in answer.headers


def test_plain_http_is_refused_off_the_loopback(tmp_path: Path) -> None:
    everywhere = "0.0.0.0"  # noqa: S104 - the refused address, never bound
    refused = run_santinel(
        "serve", "--host", everywhere, "--http", "--data-dir", str(tmp_path), timeout=60
    )
    assert refused.returncode == 2
    assert "loopback" in refused.stderr
    assert not (tmp_path / "santinel.sqlite3").exists()  # refused before anything was opened


# -- certificate-bound tokens (RFC 8705) ----------------------------------------------------
def tls_client(world: World, cert: tuple[Path, Path] | None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(world.ca_file))
    if cert is not None:
        context.load_cert_chain(*cert)
    return httpx.Client(verify=context, timeout=10)


def partner_token(world: World) -> str:
    partner = world.partner
    with tls_client(world, (partner.cert, partner.key)) as client:
        answer = client.post(
            f"{world.server.url}/oauth/token",
            data={"grant_type": "client_credentials", "scope": "system/Patient.rs"},
            auth=(partner.client_id, partner.secret),
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "Bearer"
    return str(answer.json()["access_token"])


def read_patients(world: World, token: str, cert: tuple[Path, Path] | None) -> httpx.Response:
    with tls_client(world, cert) as client:
        return client.get(
            f"{world.server.base}/Patient", headers={"Authorization": f"Bearer {token}"}
        )


def test_a_partner_token_is_bound_to_its_certificate_and_works_with_it(world: World) -> None:
    token = partner_token(world)
    expected = pem_thumbprint(world.partner.cert.read_bytes())
    assert claims_of(token)["cnf"] == {"x5t#S256": expected}
    partner = (world.partner.cert, world.partner.key)
    assert read_patients(world, token, partner).status_code == 200


def test_a_bound_token_without_the_certificate_is_refused(world: World) -> None:
    answer = read_patients(world, partner_token(world), None)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_a_bound_token_with_another_certificate_of_the_same_ca_is_refused(world: World) -> None:
    answer = read_patients(world, partner_token(world), world.other_cert)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_a_certificate_of_another_ca_is_refused_at_the_handshake(world: World) -> None:
    with pytest.raises(httpx.TransportError):
        read_patients(world, "anything", world.stranger_cert)


def test_a_partner_without_its_certificate_gets_no_token(world: World) -> None:
    partner = world.partner
    for cert in (None, world.other_cert):
        with tls_client(world, cert) as client:
            answer = client.post(
                f"{world.server.url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(partner.client_id, partner.secret),
            )
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_request"


def test_discovery_advertises_certificate_bound_tokens(world: World) -> None:
    with tls_client(world, None) as client:
        config = client.get(f"{world.server.base}/.well-known/smart-configuration").json()
    assert config["tls_client_certificate_bound_access_tokens"] is True
