"""HTTP/1.1 connection limits uvicorn's httptools protocol does not have (issue 6 hardening).

Measured with uvicorn 0.54 + httptools: a 10 MB header is accepted whole, and a connection that
sends half a request line, or a body slower than a trickle, is held forever (only the idle time
*between* requests is bounded, by `timeout_keep_alive`). `h11_max_incomplete_event_size` applies
to the pure-Python h11 parser only, which is slower. So the fast protocol is kept and bounded:

- request line + headers larger than `max_header_bytes`: 431, connection closed, counted on the
  raw bytes before the parser keeps them (memory stays bounded);
- no complete request line and headers `header_timeout` seconds after the connection opened or
  the request began: 408, connection closed (slowloris);
- no complete body `body_timeout` seconds after the headers: 408, connection closed (slow POST);
- idle keep-alive connections close after `timeout_keep_alive` (uvicorn's own option).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from santinel.settings import Settings

REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with header size, header time and body time limits."""

    max_header_bytes = 32 * 1024
    header_timeout = 10.0
    body_timeout = 60.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_bytes = 0
        self._in_headers = True
        self._refused = False
        self._timer: asyncio.TimerHandle | None = None
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._in_headers and self._header_bytes > self.max_header_bytes:
            self._refuse(431)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
        self._in_headers = False
        self._header_bytes = 0
        if size > self.max_header_bytes:
            self._refuse(431)
            return
        self._arm(self.body_timeout)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_headers = True
        if not self._refused:
            super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self.transport.close()  # the app answers already: just stop waiting for the body
            return
        self._refuse(408)

    def _refuse(self, status: int) -> None:
        """Answer `status` on the connection itself and close it (the app never sees it)."""
        self._refused = True
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # an app still reading the body gets a disconnect
        reason = REASONS[status]
        body = reason + b"\n"
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, reason, len(body), body)
        )
        self.transport.close()


def bounded_protocol(
    settings: Settings, base: type[HttpToolsProtocol] = HttpToolsProtocol
) -> type[BoundedHttpToolsProtocol]:
    """The protocol class with the settings' limits, on top of `base` (e.g. the TLS scope
    protocol); uvicorn instantiates it per connection."""
    bases = (
        (BoundedHttpToolsProtocol,)
        if base is HttpToolsProtocol
        else (BoundedHttpToolsProtocol, base)
    )
    return type(
        "SantinelHttpProtocol",
        bases,
        {
            "max_header_bytes": settings.max_header_bytes,
            "header_timeout": settings.header_timeout_seconds,
            "body_timeout": settings.body_timeout_seconds,
        },
    )


def server_options(settings: Settings, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """uvicorn options with the HTTP hardening added to `options` (those of the transport)."""
    merged = dict(options or {})
    base = merged.get("http")
    if base is not None and not (isinstance(base, type) and issubclass(base, HttpToolsProtocol)):
        raise TypeError("the HTTP limits need an httptools protocol")
    merged["http"] = bounded_protocol(settings, base or HttpToolsProtocol)
    merged["timeout_keep_alive"] = settings.keep_alive_seconds
    merged["proxy_headers"] = False  # the app reads them itself: santinel.web.forwarded
    return merged
