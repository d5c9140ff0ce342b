"""How `santinel serve` listens: HTTPS by default, plain HTTP only on a loopback address.

Without `--tls-cert`/`--tls-key`, a development CA and a server certificate signed by it are
created in `<data dir>/tls` (private keys 0600, the folder 0700) and kept for the next starts;
the server certificate names localhost, 127.0.0.1, ::1 and the listen address, and is issued
again when the listen address changes or it nears its end. Clients trust `tls/ca.pem`
(`curl --cacert`). Two servers starting on one data dir take turns (a file lock).
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from santinel.crypto.certificates import Issued, covers, new_ca, new_server_certificate
from santinel.settings import Settings
from santinel.web.tls import TlsScopeProtocol, server_context

FILES = ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem")
LOOPBACK_NAMES = ("localhost",)
WILDCARDS = ("0.0.0.0", "::", "")  # noqa: S104 - names of "every address", compared only


class TransportRefused(ValueError):
    """The transport settings cannot be served (the message says why and what to do)."""


@dataclass(frozen=True)
class Transport:
    scheme: str  # "https" or "http"
    context: ssl.SSLContext | None
    ca_file: Path | None  # the development CA clients must trust, when it is ours

    def uvicorn_options(self) -> dict[str, Any]:
        """Keyword arguments for `uvicorn.run`/`uvicorn.Config`."""
        options: dict[str, Any] = {"http": TlsScopeProtocol}
        if self.context is not None:
            options["ssl_context_factory"] = self._context
        return options

    def _context(self, _config: Any, _default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        """uvicorn's `ssl_context_factory`: our prepared context, whatever its defaults."""
        if self.context is None:
            raise RuntimeError("no TLS context to serve")
        return self.context


def prepare(settings: Settings) -> Transport:
    """The transport `settings` ask for, refused with a clear message when unsafe."""
    if settings.plain_http:
        if settings.client_ca is not None:
            raise TransportRefused("--client-ca needs HTTPS: drop --http.")
        if not is_loopback(settings.host):
            raise TransportRefused(
                f"--http serves plain HTTP, allowed only on a loopback address (127.0.0.1, ::1, "
                f"localhost), not {settings.host}: use HTTPS (the default, or --tls-cert and "
                "--tls-key), or listen on 127.0.0.1 behind a TLS-terminating proxy."
            )
        return Transport("http", None, None)
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise TransportRefused("--tls-cert and --tls-key go together.")
    ca_file = None
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None or key is None:
        folder = settings.data_dir / "tls"
        try:
            ca_file, cert, key = development_certificate(folder, settings.host)
        except OSError as problem:
            raise TransportRefused(
                f"cannot keep a development certificate in {folder} ({problem.strerror}): "
                "give --tls-cert and --tls-key"
            ) from None
    try:
        context = server_context(cert, key, settings.client_ca)
    except (OSError, ssl.SSLError) as problem:
        raise TransportRefused(f"cannot use the TLS certificate or key: {problem}") from None
    return Transport("https", context, ca_file)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """The host as written in a URL (IPv6 addresses in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def development_certificate(folder: Path, host: str) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) in `folder`, made when missing."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    paths = {name: folder / name for name in FILES}
    names = server_names(host)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if paths["ca.pem"].exists() and paths["ca-key.pem"].exists():
            ca = Issued(paths["ca.pem"].read_bytes(), paths["ca-key.pem"].read_bytes())
        else:
            ca = new_ca()
            _write(paths["ca-key.pem"], ca.key_pem, 0o600)
            _write(paths["ca.pem"], ca.cert_pem, 0o644)
        server = paths["server.pem"]
        if not (server.exists() and covers(server.read_bytes(), names, ca.cert_pem)):
            issued = new_server_certificate(ca, names)
            _write(paths["server-key.pem"], issued.key_pem, 0o600)
            _write(server, issued.cert_pem, 0o644)
    return paths["ca.pem"], server, paths["server-key.pem"]


def server_names(host: str) -> list[str]:
    names = ["localhost", "127.0.0.1", "::1"]
    bare = host.strip("[]")
    extra = socket.gethostname() if bare in WILDCARDS else bare
    if extra and extra not in names:
        names.append(extra)
    return names


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write through a new file renamed into place: `mode` holds from the first byte."""
    temporary = path.with_name(f".{path.name}.new")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.replace(temporary, path)
