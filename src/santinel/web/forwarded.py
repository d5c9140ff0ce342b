"""What a trusted reverse proxy says about the original request: `X-Forwarded-For`, `-Proto`,
`-Host`, `-Port` and `-Prefix`.

Behind a proxy the TCP peer is the proxy, the scheme may be plain HTTP and the Host header the
proxy's upstream name; the client's address (rate limits, audit), the scheme (HSTS) and the public
base URL (the `fullUrl`s, `Location` headers and paging links, the audience of tokens) are in
these headers. Anyone can send them, so they are read only when the peer is one of
`forwarded_allow_ips` (loopback by default), and only in a well-formed shape; otherwise the
request is taken as it came. `public_base_url`, when set, still wins for links.

uvicorn's own proxy-header handling is switched off (`server_options`): it rewrites the peer
address before the app runs, after which the app could no longer tell whether the peer was
trusted for the headers uvicorn does not read (Host, Port, Prefix).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Labels separated by mandatory dots: an optional dot inside a repeated group would let a
# string of letters split into labels in exponentially many ways (catastrophic backtracking).
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
HOST = re.compile(rf"{LABEL}(?:\.{LABEL})*\.?|\[[0-9A-Fa-f:.]+\]")
MAX_HOST = 260  # a DNS name (253) with a port
HOST_AND_PORT = re.compile(rf"(?P<host>{HOST.pattern})(?::(?P<port>\d{{1,5}}))?")
PREFIX = re.compile(r"(?:/[A-Za-z0-9\-._~]+)+")
SCHEMES = {"http": "http", "https": "https", "ws": "ws", "wss": "wss"}
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


VERDICTS_KEPT = 4096  # peer addresses whose verdict is remembered (then forgotten at once)


class TrustedProxies:
    """The addresses whose forwarding headers are believed: IPs, networks, or `*`."""

    def __init__(self, spec: str) -> None:
        items = [item.strip() for item in spec.split(",") if item.strip()]
        self.everyone = "*" in items
        self.networks: list[Network] = [
            ipaddress.ip_network(item, strict=False) for item in items if item != "*"
        ]
        self._verdicts: dict[str, bool] = {}  # by peer address, bounded (`VERDICTS_KEPT`)

    def __contains__(self, address: str | None) -> bool:
        if address is None:
            return False
        if self.everyone:
            return True
        known = self._verdicts.get(address)
        if known is None:  # parsing the address cost 5 µs per request; peers come back
            if len(self._verdicts) >= VERDICTS_KEPT:
                self._verdicts.clear()
            known = self._verdicts[address] = self._trusts(address)
        return known

    def _trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # a Unix socket path, or nothing an IP network contains
        return any(ip in network for network in self.networks)


class ForwardedHeadersMiddleware:
    def __init__(self, app: ASGIApp, trusted: str) -> None:
        self.app = app
        self.trusted = TrustedProxies(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            if peer is not None and peer[0] in self.trusted:
                scope = forwarded_scope(scope, self.trusted)
        await self.app(scope, receive, send)


def forwarded_scope(scope: Scope, trusted: TrustedProxies) -> Scope:
    """A copy of `scope` with what the proxy's headers say, for the parts they say it well."""
    headers = _last_values(scope["headers"])
    changed = dict(scope)
    client = _original_client(headers.get(b"x-forwarded-for"), trusted)
    if client is not None:
        changed["client"] = (client, 0)
    scheme = SCHEMES.get(_text(headers.get(b"x-forwarded-proto")).lower())
    if scheme is not None:
        changed["scheme"] = scheme
    host = _host(headers, changed["scheme"])
    if host is not None:
        changed["headers"] = [(k, v) for k, v in scope["headers"] if k != b"host"]
        changed["headers"].append((b"host", host.encode("ascii")))
    prefix = _prefix(headers.get(b"x-forwarded-prefix"))
    if prefix:
        changed["root_path"] = prefix + scope.get("root_path", "")
    return changed


def _last_values(raw: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Header name → value; a repeated header's values joined by commas (RFC 9110 §5.3)."""
    values: dict[bytes, bytes] = {}
    for name, value in raw:
        values[name] = values[name] + b"," + value if name in values else value
    return values


def _text(value: bytes | None) -> str:
    return value.decode("latin-1").strip() if value is not None else ""


def _original_client(forwarded_for: bytes | None, trusted: TrustedProxies) -> str | None:
    """The first address from the right that is not a trusted proxy: every hop appends the
    address it received from, so what precedes the nearest untrusted hop is that hop's claim."""
    hops = [hop.strip() for hop in _text(forwarded_for).split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop.strip("[]"))
        except ValueError:
            return None  # not an address: believe nothing of this header
        if hop.strip("[]") not in trusted:
            return hop.strip("[]")
    return hops[0].strip("[]") if hops else None


def _prefix(value: bytes | None) -> str | None:
    """The path the proxy serves Santinel under ("/santinel"): plain segments, no dot-segment."""
    prefix = _text(value).rstrip("/")
    if not PREFIX.fullmatch(prefix) or any(s in (".", "..") for s in prefix.split("/")):
        return None
    return prefix


def _host(headers: dict[bytes, bytes], scheme: str) -> str | None:
    """The original Host (with `X-Forwarded-Port` when it is not the scheme's default)."""
    # a list (several proxies): the first is the one the client asked for
    given = _text(headers.get(b"x-forwarded-host")).split(",")[0].strip()
    matched = HOST_AND_PORT.fullmatch(given) if 0 < len(given) <= MAX_HOST else None
    if matched is None:
        return None
    host, port = matched["host"], matched["port"]
    forwarded_port = _text(headers.get(b"x-forwarded-port"))
    if port is None and forwarded_port.isdigit() and len(forwarded_port) <= 5:
        port = forwarded_port
    if port is not None and not 0 < int(port) < 65536:
        return None
    if port is None or int(port) == DEFAULT_PORTS.get(scheme):
        return host
    return f"{host}:{port}"
