"""HTTPS for `santinel serve`: the TLS settings, and the client certificate in the ASGI scope.

TLS settings follow ANSSI's "Recommandations de sécurité relatives à TLS" (v1.2): TLS 1.2 and
1.3 only (R3/R4); in TLS 1.2 only suites with an ephemeral ECDHE exchange (forward secrecy, no
RSA key transport) and an AEAD cipher (AES-GCM, ChaCha20-Poly1305: no CBC, no SHA-1 MAC), the
server's order preferred; no compression, no renegotiation. TLS 1.3's suites are OpenSSL's
defaults (AES-256-GCM, ChaCha20-Poly1305, AES-128-GCM: all AEAD, all in ANSSI's list; Python
cannot set them). Key-exchange groups are OpenSSL's defaults (X25519, P-256, X448, P-521,
P-384, and finite-field groups of 2048 bits or more in TLS 1.3 only), every one accepted by
ANSSI: Python 3.11's `ssl` can only narrow them to a single curve, and P-256 alone would cost a
HelloRetryRequest round trip to every client that leads with X25519 (curl, browsers).

uvicorn does not report the peer certificate to the application, so `TlsScopeProtocol` (its
httptools protocol, one method more) adds the ASGI TLS extension
(`scope["extensions"]["tls"]`, asgiref `specs/tls.rst` v0.2) to every request of a TLS
connection: `client_cert_chain` holds the client certificate as PEM (only the leaf: Python 3.11
does not expose the rest of the chain), computed once per connection.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from santinel.crypto.certificates import der_to_pem

TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES128-GCM-SHA256",
    )
)
TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def server_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """The server's TLS context; with `client_ca`, clients may present a certificate, which
    must then verify against that CA (a connection without one is still accepted: tokens
    bound to a certificate are refused on it later)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= (
        ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    )
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cafile=client_ca)
    return context


class TlsScopeProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, adding the ASGI TLS extension on TLS connections (and
    nothing on plain ones, as the extension's spec requires)."""

    _tls: dict[object, object] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = tls_extension(transport.get_extra_info("ssl_object"))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}


def tls_extension(connection: ssl.SSLObject | ssl.SSLSocket | None) -> dict[object, object] | None:
    """The ASGI TLS extension's dictionary for one connection; None without TLS."""
    if connection is None:
        return None
    der = connection.getpeercert(binary_form=True)
    cipher = connection.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": [der_to_pem(der)] if der else [],
        "client_cert_name": _subject(der) if der else None,
        "client_cert_error": None,  # a certificate that does not verify fails the handshake
        "tls_version": TLS_VERSIONS.get(connection.version() or ""),
        "cipher_suite": _suite_ids(connection.context).get(cipher[0]) if cipher else None,
    }


def client_certificate(scope: Any) -> str | None:
    """The PEM client certificate of the request's connection, if it presented one."""
    tls = scope.get("extensions", {}).get("tls")
    chain = tls.get("client_cert_chain") if tls else None
    return chain[0] if chain else None


def _subject(der: bytes) -> str:
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


@functools.cache
def _suite_ids(context: ssl.SSLContext) -> dict[str, int]:
    """OpenSSL suite name → its IANA number (the low 16 bits of OpenSSL's id)."""
    return {suite["name"]: suite["id"] & 0xFFFF for suite in context.get_ciphers()}
