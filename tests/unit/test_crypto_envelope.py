"""Envelope encryption, key wrapping, blind indexes and the key providers (pure, no database;
the Vault provider against the local fake of its HTTP API)."""

from __future__ import annotations

import hmac
import stat
from pathlib import Path

import anyio
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from santinel.crypto.blind_index import INFO, BlindIndex
from santinel.crypto.envelope import DataKey, Tampered, associated_data, new_key
from santinel.crypto.key_providers import (
    EnvKeyProvider,
    FileKeyProvider,
    KeyProviderError,
    VaultTransitProvider,
    WrongKek,
    key_text,
)
from tests.vault_fake import FakeVault

AAD = associated_data("santinel resource v1", "Patient", "1", "1", "k1")


def test_a_sealed_body_opens_with_its_key_and_aad() -> None:
    key = DataKey("k1", new_key())
    sealed = key.seal(b'{"resourceType":"Patient"}', AAD)
    assert b"Patient" not in sealed
    assert key.open(sealed, AAD) == b'{"resourceType":"Patient"}'


def test_a_body_moved_to_another_row_does_not_open() -> None:
    key = DataKey("k1", new_key())
    sealed = key.seal(b"{}", AAD)
    for other in (
        associated_data("santinel resource v1", "Patient", "2", "1", "k1"),  # another id
        associated_data("santinel resource v1", "Patient", "1", "2", "k1"),  # another version
        associated_data("santinel resource v1", "Patient", "1", "1", "k2"),  # another key id
    ):
        with pytest.raises(Tampered):
            key.open(sealed, other)


def test_an_altered_body_or_another_key_does_not_open() -> None:
    key = DataKey("k1", new_key())
    sealed = bytearray(key.seal(b"{}", AAD))
    sealed[-1] ^= 1
    with pytest.raises(Tampered):
        key.open(bytes(sealed), AAD)
    with pytest.raises(Tampered):
        DataKey("k1", new_key()).open(key.seal(b"{}", AAD), AAD)
    with pytest.raises(Tampered):
        key.open(b"garbage", AAD)


def test_associated_data_parts_cannot_run_into_each_other() -> None:
    assert associated_data("ab", "c") != associated_data("a", "bc")


def test_blind_index_terms_are_stable_per_scope_and_differ_across_scopes() -> None:
    index = BlindIndex(new_key())
    term = index.term("Patient.family", "v", "dupont")
    assert term == index.term("Patient.family", "v", "dupont")
    assert term != index.term("Patient.given", "v", "dupont")  # equality leaks within a param only
    assert term != index.term("Patient.family", "p", "dupont")
    assert term != BlindIndex(new_key()).term("Patient.family", "v", "dupont")
    assert "dupont" not in term
    assert len(term) == 32


def test_blind_index_terms_are_the_documented_hmac_so_stored_digests_stay_valid() -> None:
    master = bytes(range(32))
    scope_key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=INFO + b"Patient.family"
    ).derive(master)
    expected = hmac.digest(scope_key, b"p\x00dup", "sha256")[:16].hex()
    index = BlindIndex(master)
    assert index.term("Patient.family", "p", "dup") == expected
    assert index.term("Patient.family", "p", "dup") == expected  # the cached state is unchanged


def test_a_key_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "santinel.kek"
    provider = FileKeyProvider.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not provider.group_or_world_readable()
    again = FileKeyProvider.load_or_create(path)
    assert again.kek_id == provider.kek_id


def test_local_wrapping_binds_the_context_and_the_kek(tmp_path: Path) -> None:
    async def run() -> None:
        provider = FileKeyProvider.load_or_create(tmp_path / "a.kek")
        secret = new_key()
        wrapped = await provider.wrap(secret, b"k1/Patient/1")
        assert await provider.unwrap(wrapped, b"k1/Patient/1") == secret
        with pytest.raises(WrongKek):
            await provider.unwrap(wrapped, b"k1/Patient/2")
        other = EnvKeyProvider(key_text(new_key()))
        assert other.kek_id != provider.kek_id
        with pytest.raises(WrongKek):
            await other.unwrap(wrapped, b"k1/Patient/1")

    anyio.run(run)


@pytest.mark.parametrize("text", ["", "not base64!", key_text(b"short")])
def test_a_malformed_kek_is_refused_clearly(text: str) -> None:
    with pytest.raises(KeyProviderError, match="key-encryption key"):
        EnvKeyProvider(text)


def test_vault_transit_wraps_unwraps_rotates_and_rewraps() -> None:
    async def run(vault: FakeVault) -> None:
        provider = VaultTransitProvider(vault.url, vault.token)
        try:
            await provider.reload()
            assert provider.kek_id == "vault:transit/santinel:v1"
            secret = new_key()
            wrapped = await provider.wrap(secret, b"ctx")
            assert wrapped.startswith(b"vault:v1:")
            assert await provider.unwrap(wrapped, b"ctx") == secret
            with pytest.raises(WrongKek):
                await provider.unwrap(wrapped, b"another place")
            await provider.rotate()
            assert provider.kek_id == "vault:transit/santinel:v2"
            assert await provider.unwrap(wrapped, b"ctx") == secret  # older versions still open
            [rewrapped] = await provider.rewrap([wrapped])
            assert rewrapped.startswith(b"vault:v2:")
            vault.min_decryption_version = 2  # the old version retired: old wraps are dead
            with pytest.raises(WrongKek):
                await provider.unwrap(wrapped, b"ctx")
            assert await provider.unwrap(rewrapped, b"ctx") == secret
        finally:
            await provider.close()

    with FakeVault() as vault:
        anyio.run(run, vault)


def test_vault_refusals_and_outages_are_clear_errors() -> None:
    async def run(url: str) -> None:
        provider = VaultTransitProvider(url, "s.wrong")
        try:
            with pytest.raises(KeyProviderError, match="403: permission denied"):
                await provider.reload()
        finally:
            await provider.close()
        gone = VaultTransitProvider("http://127.0.0.1:9", "t", timeout=1)
        try:
            with pytest.raises(KeyProviderError, match="unreachable"):
                await gone.wrap(b"k" * 32, b"ctx")
        finally:
            await gone.close()

    with FakeVault() as vault:
        anyio.run(run, vault.url)
