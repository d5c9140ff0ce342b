"""Transport choices of `santinel serve` (HTTPS by default, plain HTTP only on loopback), the
development CA, and certificate thumbprints."""

from __future__ import annotations

import base64
import hashlib
import ssl
import stat
from pathlib import Path

import pytest

from santinel.cli.tls import TransportRefused, development_certificate, is_loopback, prepare
from santinel.crypto.certificates import new_ca, new_client_certificate, pem_thumbprint
from santinel.settings import Settings


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1", "example.org", ""])  # noqa: S104
def test_other_addresses_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_plain_http_is_refused_off_the_loopback(tmp_path: Path) -> None:
    with pytest.raises(TransportRefused, match="loopback"):
        prepare(Settings(host="192.0.2.1", plain_http=True, data_dir=tmp_path))


def test_plain_http_is_allowed_on_the_loopback(tmp_path: Path) -> None:
    transport = prepare(Settings(plain_http=True, data_dir=tmp_path))
    assert (transport.scheme, transport.context) == ("http", None)
    assert not (tmp_path / "tls").exists()


def test_mutual_tls_needs_https(tmp_path: Path) -> None:
    with pytest.raises(TransportRefused, match="HTTPS"):
        prepare(Settings(plain_http=True, client_ca=tmp_path / "ca.pem", data_dir=tmp_path))


def test_a_certificate_needs_its_key(tmp_path: Path) -> None:
    with pytest.raises(TransportRefused, match="together"):
        prepare(Settings(tls_cert=tmp_path / "cert.pem", data_dir=tmp_path))


def test_an_unreadable_certificate_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    settings = Settings(tls_cert=tmp_path / "cert.pem", tls_key=tmp_path / "key.pem")
    with pytest.raises(TransportRefused, match="cannot use"):
        prepare(settings)


def test_https_is_the_default_with_a_development_ca(tmp_path: Path) -> None:
    transport = prepare(Settings(data_dir=tmp_path))
    assert transport.scheme == "https"
    assert transport.ca_file == tmp_path / "tls" / "ca.pem"
    assert transport.context is not None
    assert transport.context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_private_keys_are_0600_and_the_folder_0700(tmp_path: Path) -> None:
    development_certificate(tmp_path / "tls", "127.0.0.1")
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    for name in ("ca-key.pem", "server-key.pem"):
        assert stat.S_IMODE((tmp_path / "tls" / name).stat().st_mode) == 0o600


def test_the_ca_is_kept_and_the_server_certificate_follows_the_host(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    ca, server, _ = development_certificate(folder, "127.0.0.1")
    first_ca, first_server = ca.read_bytes(), server.read_bytes()
    development_certificate(folder, "127.0.0.1")
    assert (ca.read_bytes(), server.read_bytes()) == (first_ca, first_server)
    development_certificate(folder, "santinel.test")
    assert ca.read_bytes() == first_ca
    assert server.read_bytes() != first_server
    context = ssl.create_default_context(cafile=str(ca))
    assert context.get_ca_certs()  # the kept CA still loads


def test_the_thumbprint_is_the_sha256_of_the_der_certificate() -> None:
    issued = new_client_certificate(new_ca(), "partner")
    der = ssl.PEM_cert_to_DER_cert(issued.cert_pem.decode())
    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert pem_thumbprint(issued.cert_pem) == expected


def test_a_data_dir_that_cannot_hold_the_certificate_is_refused_clearly(tmp_path: Path) -> None:
    occupied = tmp_path / "file"
    occupied.write_text("not a folder")
    with pytest.raises(TransportRefused, match="--tls-cert"):
        prepare(Settings(data_dir=occupied))
