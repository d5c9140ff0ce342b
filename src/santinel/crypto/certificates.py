"""X.509 for transport security: a local development CA, its server certificates, and the
certificate thumbprints that bind access tokens to a client certificate (RFC 8705 §3.1).

Keys are ECDSA P-256 (ANSSI's TLS guide accepts ECDSA from 256 bits; every TLS 1.2/1.3 client
supports it). The development CA is for one machine only: it can sign nothing but TLS server
certificates for the names given (path length 0, name constraints are not needed because the
CA never leaves the data dir).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 397  # the longest validity browsers accept for a server certificate
RENEW_BEFORE_DAYS = 30


class CertificateError(ValueError):
    """A file that is not a usable PEM certificate."""


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes


def x5t_s256(der: bytes) -> str:
    """`x5t#S256`: base64url (unpadded) SHA-256 of the DER certificate (RFC 8705 §3.1)."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def pem_thumbprint(pem: bytes) -> str:
    """The `x5t#S256` of the first certificate in a PEM file."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise CertificateError("not a PEM X.509 certificate") from None
    return x5t_s256(certificate.public_bytes(serialization.Encoding.DER))


def der_to_pem(der: bytes) -> str:
    """The PEM text of a DER certificate (what the ASGI TLS extension carries)."""
    certificate = x509.load_der_x509_certificate(der)
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def pem_to_der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def new_ca(common_name: str = "Santinel development CA") -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    certificate = (
        _builder(name, name, key.public_key(), now, CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(_pem(certificate), _key_pem(key))


def new_server_certificate(ca: Issued, names: list[str]) -> Issued:
    """A TLS server certificate for `names` (DNS names or IP addresses), signed by `ca`."""
    return _leaf(ca, names, ExtendedKeyUsageOID.SERVER_AUTH)


def new_client_certificate(ca: Issued, common_name: str) -> Issued:
    """A TLS client certificate (mutual TLS, RFC 8705) named `common_name`, signed by `ca`."""
    return _leaf(ca, [common_name], ExtendedKeyUsageOID.CLIENT_AUTH)


def _leaf(ca: Issued, names: list[str], usage: x509.ObjectIdentifier) -> Issued:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise CertificateError("the CA key is not an ECDSA key")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    builder = (
        _builder(subject, ca_cert.subject, key.public_key(), _now(), SERVER_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if usage == ExtendedKeyUsageOID.SERVER_AUTH:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(_alt_names(names)), critical=False
        )
    return Issued(_pem(builder.sign(ca_key, hashes.SHA256())), _key_pem(key))


def covers(cert_pem: bytes, names: list[str], ca_pem: bytes) -> bool:
    """The certificate was issued by this CA, names every one of `names`, and stays valid
    for more than RENEW_BEFORE_DAYS."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
        ca_cert = x509.load_pem_x509_certificate(ca_pem)
        certificate.verify_directly_issued_by(ca_cert)
        present = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, TypeError, x509.ExtensionNotFound):
        return False
    renew_at = _now() + datetime.timedelta(days=RENEW_BEFORE_DAYS)
    return certificate.not_valid_after_utc > renew_at and set(_alt_names(names)) <= set(
        present.value
    )


def _alt_names(names: list[str]) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
    days: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
