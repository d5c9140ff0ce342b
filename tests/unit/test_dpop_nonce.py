"""Server DPoP nonces: accepted for their window and the next, by every node holding the same
signing keys, and through a key rotation; anything else is refused."""

from __future__ import annotations

import pytest

from santinel.crypto.jwt import KeyRing, SigningKey
from santinel.services.dpop_nonce import DpopNonces

NOW = 1_800_000_000.0
WINDOW = 300


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing([SigningKey.generate("k1")])


def test_a_nonce_is_accepted_in_its_window_and_the_next(ring: KeyRing) -> None:
    nonces = DpopNonces(ring, WINDOW)
    nonce = nonces.current(NOW)
    assert len(nonce) == 27
    assert nonces.accepts(nonce, NOW)
    assert nonces.accepts(nonce, NOW + WINDOW)


def test_a_nonce_two_windows_old_is_refused(ring: KeyRing) -> None:
    nonces = DpopNonces(ring, WINDOW)
    assert not nonces.accepts(nonces.current(NOW), NOW + 2 * WINDOW)


def test_a_nonce_from_the_future_is_refused(ring: KeyRing) -> None:
    nonces = DpopNonces(ring, WINDOW)
    assert not nonces.accepts(nonces.current(NOW + WINDOW), NOW)


def test_another_node_with_the_same_keys_accepts_it(ring: KeyRing) -> None:
    other_node = DpopNonces(KeyRing(list(ring.keys)), WINDOW)
    assert other_node.accepts(DpopNonces(ring, WINDOW).current(NOW), NOW)


def test_a_server_with_other_keys_refuses_it(ring: KeyRing) -> None:
    stranger = DpopNonces(KeyRing([SigningKey.generate("k1")]), WINDOW)
    assert not stranger.accepts(DpopNonces(ring, WINDOW).current(NOW), NOW)


def test_a_rotation_keeps_nonces_in_flight(ring: KeyRing) -> None:
    nonces = DpopNonces(ring, WINDOW)
    before = nonces.current(NOW)
    old = ring.keys[0]
    retired = SigningKey(old.kid, old.alg, old.key, old.created_at, int(NOW) + 600)
    ring.replace([retired, SigningKey.generate("k2")])
    assert nonces.current(NOW) != before  # the new key mints
    assert nonces.accepts(before, NOW)  # the old one still verifies


@pytest.mark.parametrize("nonce", ["", "short", "A" * 27, "!" * 27, None, 12, "A" * 28], ids=repr)
def test_malformed_nonces_are_refused(ring: KeyRing, nonce: object) -> None:
    assert not DpopNonces(ring, WINDOW).accepts(nonce, NOW)


def test_a_tampered_mac_is_refused(ring: KeyRing) -> None:
    nonces = DpopNonces(ring, WINDOW)
    nonce = nonces.current(NOW)
    # not the last character: in unpadded base64 its low bits may be padding, ignored on decode
    flipped = "A" if nonce[-5] != "A" else "B"
    tampered = nonce[:-5] + flipped + nonce[-4:]
    assert not nonces.accepts(tampered, NOW)
