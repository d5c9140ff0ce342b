"""What a trusted proxy's X-Forwarded-* headers change in the request, and what they cannot."""

from __future__ import annotations

import time
from typing import Any

import pytest

from santinel.web.forwarded import TrustedProxies, forwarded_scope

TRUSTED = TrustedProxies("127.0.0.1, 10.0.0.0/8, ::1")


def scope(*headers: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "http",
        "client": ("127.0.0.1", 5000),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8080")]
        + [(k.lower().encode(), v.encode()) for k, v in headers],
    }


@pytest.mark.parametrize(
    ("forwarded_for", "client"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7, 10.1.2.3", "203.0.113.7"),  # through two trusted proxies
        ("198.51.100.1, 203.0.113.7, 10.1.2.3", "203.0.113.7"),  # the first claim is the client's
        ("10.1.2.3", "10.1.2.3"),  # only proxies: the farthest one
        ("[2001:db8::1]", "2001:db8::1"),
        ("not-an-address, 10.1.2.3", None),  # believe nothing of a forged list
    ],
)
def test_the_client_is_the_nearest_untrusted_hop(forwarded_for: str, client: str | None) -> None:
    changed = forwarded_scope(scope(("X-Forwarded-For", forwarded_for)), TRUSTED)
    assert changed["client"] == ((client, 0) if client else ("127.0.0.1", 5000))


@pytest.mark.parametrize(
    ("headers", "host"),
    [
        ((("X-Forwarded-Host", "fhir.example"),), b"fhir.example"),
        ((("X-Forwarded-Host", "fhir.example:8443"),), b"fhir.example:8443"),
        (
            (("X-Forwarded-Host", "fhir.example"), ("X-Forwarded-Port", "8443")),
            b"fhir.example:8443",
        ),
        (
            (("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "a.example:443")),
            b"a.example",
        ),
        ((("X-Forwarded-Host", "a.example, internal.lan"),), b"a.example"),
        ((("X-Forwarded-Host", "evil.example/x"),), b"127.0.0.1:8080"),
        ((("X-Forwarded-Host", "evil.example:99999"),), b"127.0.0.1:8080"),
        ((("X-Forwarded-Host", ""),), b"127.0.0.1:8080"),
    ],
)
def test_the_host_is_the_forwarded_one_when_well_formed(
    headers: tuple[tuple[str, str], ...], host: bytes
) -> None:
    changed = forwarded_scope(scope(*headers), TRUSTED)
    assert [v for k, v in changed["headers"] if k == b"host"] == [host]


@pytest.mark.parametrize(
    ("prefix", "root_path"),
    [("/santinel", "/santinel"), ("/a/b/", "/a/b"), ("/../x", ""), ("x", ""), ("/a b", "")],
)
def test_the_prefix_becomes_the_root_path(prefix: str, root_path: str) -> None:
    changed = forwarded_scope(scope(("X-Forwarded-Prefix", prefix)), TRUSTED)
    assert changed["root_path"] == root_path


def test_only_known_schemes_are_taken() -> None:
    assert forwarded_scope(scope(("X-Forwarded-Proto", "HTTPS")), TRUSTED)["scheme"] == "https"
    assert forwarded_scope(scope(("X-Forwarded-Proto", "gopher")), TRUSTED)["scheme"] == "http"


def test_trusted_proxies() -> None:
    assert "10.20.30.40" in TRUSTED
    assert "::1" in TRUSTED
    assert "192.168.1.1" not in TRUSTED
    assert "unix:/run/sock" not in TRUSTED
    assert None not in TRUSTED
    assert "192.168.1.1" in TrustedProxies("*")


def test_a_hostile_host_is_rejected_in_linear_time() -> None:
    """A label-splitting ambiguity in the host pattern used to take seconds on 24 letters."""
    for hostile in ("a" * 5000 + "!", ("a" * 63 + ".") * 10 + "!", "a-" * 2000 + "!"):
        started = time.perf_counter()
        changed = forwarded_scope(scope(("X-Forwarded-Host", hostile)), TRUSTED)
        assert time.perf_counter() - started < 5  # linear: microseconds; exponential: hours
        assert [v for k, v in changed["headers"] if k == b"host"] == [b"127.0.0.1:8080"]


def test_a_bracketed_trusted_proxy_is_skipped_like_any_other() -> None:
    changed = forwarded_scope(scope(("X-Forwarded-For", "203.0.113.7, [::1]")), TRUSTED)
    assert changed["client"] == ("203.0.113.7", 0)
