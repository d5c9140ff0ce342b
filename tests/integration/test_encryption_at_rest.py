"""Encryption at rest, proven on the bytes: patients written, read and searched for with unique
marker strings leave none of them in the SQLite files (database, `-wal`, `-shm`) nor in a
`pg_dump`, not even base64-encoded as the audit trail records queries; the wrong KEK
stops the server with a clear message; an altered or moved ciphertext is an error and a
security audit event, never garbage; KEK and DEK rotations keep every version readable, the
latter while the server serves; the Vault Transit provider runs the server end to end."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
from sqlalchemy import select, text, update

from santinel.crypto import key_providers
from santinel.crypto.key_providers import KeyProviderError
from santinel.services import key_admin
from santinel.services.container import Container, NameIndexesMismatch
from santinel.settings import Settings
from santinel.storage.base import AuditQuery
from santinel.storage.sql.keystore import RECHECK_SECONDS, WrongKeyEncryptionKey
from santinel.storage.sql.repository import SqlRepository
from santinel.storage.sql.tables import audit_event, data_key, resource, resource_history
from tests.audit_trail import opened_rows
from tests.integration.processes import SANTINEL, clean_environment
from tests.services import TLS, LiveServer, postgres_database
from tests.vault_fake import FakeVault

NIR = "urn:oid:1.2.250.1.213.1.4.8"
HEADERS = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
BIRTH_DATE = "1931-07-19"


def marker() -> str:
    return uuid.uuid4().hex[:16].upper()


def marked_patient(patient_id: str, m: str) -> dict[str, Any]:
    """A patient carrying the marker in every identifying field and in its narrative."""
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">Narrative {m}</div>',
        },
        "identifier": [{"system": NIR, "value": f"1{m}"}],
        "name": [{"family": f"Fam{m}", "given": [f"Giv{m}"], "text": f"Giv{m} Fam{m}"}],
        "telecom": [
            {"system": "phone", "value": f"+33{m}"},
            {"system": "email", "value": f"{m}@example.org"},
        ],
        "address": [{"line": [f"{m} rue de la Paix"], "city": f"City{m}", "postalCode": m}],
        "birthDate": BIRTH_DATE,
    }


def marked_observation(patient_id: str, m: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o-{patient_id}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        # a clinical value (indexed in clear: `value-string`), and free text in the body only
        "valueString": "normal",
        "note": [{"text": f"Note {m}"}],
    }


def client(live: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=live.base, headers=HEADERS, auth=live.auth, timeout=30, verify=TLS)


def write_markers(live: LiveServer, count: int = 3) -> tuple[list[str], str]:
    """Patients (two versions each) and observations with markers; (markers, control): the
    control marker is in a resource id, which is stored in clear, so the scan must find it."""
    markers, control = [marker() for _ in range(count)], marker()
    with client(live) as http:
        for n, m in enumerate(markers):
            patient_id = f"ctl{control}-{n}" if n == 0 else f"p{n}-{uuid.uuid4().hex[:8]}"
            for version in range(2):
                body = marked_patient(patient_id, m)
                body["active"] = bool(version)
                assert http.put(f"/Patient/{patient_id}", json=body).status_code in (200, 201)
            obs = marked_observation(patient_id, m)
            assert http.put(f"/Observation/{obs['id']}", json=obs).status_code in (200, 201)
            read = http.get(f"/Patient/{patient_id}")
            assert read.status_code == 200
            assert read.json()["name"][0]["family"] == f"Fam{m}"  # served in clear
            # searched by name prefix and identifier: the stored search (paging) is sealed too
            for params in ({"identifier": f"{NIR}|1{m}"}, {"family": f"fam{m}"[:12]}):
                found = http.get("/Patient", params={**params, "_count": 1}).json()
                assert [e["resource"]["id"] for e in found.get("entry", [])] == [patient_id]
    return markers, control


def needles(markers: list[str]) -> list[bytes]:
    forms = [m for m in markers] + [m.lower() for m in markers] + [BIRTH_DATE]
    # the searches' query strings, base64 in their AuditEvents: the marker (in the identifier
    # searched for) and the part of it the name search carries (`fam` + 9 characters)
    encoded = [b for m in markers for text in (m, m[:9]) for b in base64_forms(text.encode())]
    return [form.encode() for form in forms] + encoded


def base64_forms(text: bytes) -> list[bytes]:
    """What `text` looks like inside the base64 of a longer value, at each of the 3 offsets it
    can start at (the characters that also carry neighbouring bits left out)."""
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + text)
        forms.append(encoded[-(-8 * shift // 6) : 8 * (shift + len(text)) // 6])
    return forms


def test_the_base64_needles_find_a_marker_wherever_it_sits() -> None:
    """The scan's own check: a query holding the marker, base64-encoded, is found at any
    offset (so finding none in the files means something)."""
    m = marker()
    for prefix in ("", "f", "fa", "family=fam"):
        query = f"{prefix}{m}&_count=1".encode()
        assert any(form in base64.b64encode(query) for form in base64_forms(m.encode()))


def hits(data: bytes, forms: list[bytes]) -> list[bytes]:
    return [form for form in forms if form in data]


def sqlite_files(settings: Settings) -> dict[str, bytes]:
    found = {}
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{settings.sqlite_path}{suffix}")
        if path.exists():
            found[path.name] = path.read_bytes()
    return found


def test_no_marker_reaches_the_sqlite_files(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with LiveServer(settings) as live:
        markers, control = write_markers(live)
        running = sqlite_files(settings)  # the WAL holds the latest writes while serving
    stopped = sqlite_files(settings)
    assert any(name.endswith("-wal") for name in running)
    for files in (running, stopped):
        everything = b"".join(files.values())
        assert control.encode() in everything  # the scan sees what is stored in clear
        for name, data in files.items():
            assert hits(data, needles(markers)) == [], name
    assert_audit_holds_the_queries(settings, markers)


def assert_audit_holds_the_queries(settings: Settings, markers: list[str]) -> None:
    """The scan's control for the audit trail: opened, its events do hold the searches'
    queries (base64), so their absence from the stored bytes is the sealing's doing."""
    opened = b"".join(row.record.body for row in opened_rows(settings))
    for m in markers:
        assert hits(opened, base64_forms(m.encode())), m


def test_no_marker_reaches_a_pg_dump() -> None:
    with postgres_database() as url:
        settings = Settings(database_url=url)
        with LiveServer(settings) as live:
            markers, control = write_markers(live)
            dump = subprocess.run(
                ["pg_dump", "--no-owner", url], capture_output=True, check=True, timeout=120
            ).stdout
        assert_audit_holds_the_queries(settings, markers)
    assert control.encode() in dump
    assert hits(dump, needles(markers)) == []


# -- the KEK --------------------------------------------------------------------------------
def test_starting_with_the_wrong_kek_fails_with_a_clear_message(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    anyio.run(_open_and_close, settings)
    assert settings.key_path == tmp_path / "data.kek"  # beside the data dir, not in it
    other = Settings(data_dir=tmp_path / "data", key_file=tmp_path / "other.kek")
    os.environ.pop("SANTINEL_KEK", None)
    with pytest.raises(KeyProviderError, match="is missing"):
        anyio.run(_open_and_close, other)  # never creates a new key for a database with keys
    (tmp_path / "other.kek").write_text("q5mGmv0Xcy2XWAxPC6yXe6ZrbnCKoOMDg0B3kFQq7xI=\n")
    with pytest.raises(WrongKeyEncryptionKey, match="does not open this database's keys"):
        anyio.run(_open_and_close, other)
    served = subprocess.run(  # what an operator sees
        [SANTINEL, "serve", "--http", "--port", "0", "--data-dir", str(tmp_path / "data")],
        env={**clean_environment(), "SANTINEL_KEY_FILE": str(tmp_path / "other.kek")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert served.returncode == 1
    assert "does not open this database's keys" in " ".join(served.stderr.split())


async def _open_and_close(settings: Settings) -> None:
    container = await Container.open(settings)
    await container.close()


# -- integrity -------------------------------------------------------------------------------
def test_an_altered_or_moved_ciphertext_is_an_error_and_a_security_event(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    url = settings.resolved_database_url()
    with LiveServer(settings) as live, client(live) as http:
        m = marker()
        for patient_id in ("a", "b"):
            assert http.put(f"/Patient/{patient_id}", json=marked_patient(patient_id, m)).is_success
        anyio.run(_swap_current_bodies, url, "a", "b")
        moved = http.get("/Patient/a")
        assert moved.status_code == 500
        assert "integrity check" in moved.json()["issue"][0]["diagnostics"]
        assert m not in moved.text
        anyio.run(_flip_history_byte, url, "b")
        altered = http.get("/Patient/b/_history/1")
        assert altered.status_code == 500
        assert m not in altered.text
        anyio.run(_unseal, url, "b")  # a plaintext body slipped in: refused as well
        assert http.get("/Patient/b").status_code == 500
    events = [row.record for row in opened_rows(settings)]
    alerts = {(e.subtype, e.entity): orjson.loads(e.body) for e in events}
    for entity in ("Patient/a/_history/1", "Patient/b/_history/1"):
        event = alerts[("integrity-failure", entity)]
        assert event["type"]["code"] == "110113"  # DICOM Security Alert
        assert event["outcome"] == "8"
        assert m not in orjson.dumps(event).decode()


def test_an_audit_body_moved_to_another_record_is_not_served_and_is_a_security_event(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    m = marker()
    with LiveServer(settings) as live, client(live) as http:
        for patient_id in ("a", "b"):
            assert http.put(f"/Patient/{patient_id}", json=marked_patient(patient_id, m)).is_success
            assert http.get("/Patient", params={"family": f"fam{m}"[:12]}).is_success
        event_id, seq = anyio.run(_swap_audit_bodies, settings.resolved_database_url())
        moved = http.get(f"/AuditEvent/{event_id}")
        assert moved.status_code == 500
        assert "integrity check" in moved.json()["issue"][0]["diagnostics"]
        assert http.get("/AuditEvent", params={"patient": "a"}).status_code == 500
        assert m not in moved.text
        assert http.get("/AuditEvent", params={"patient": "a", "subtype": "create"}).is_success
    alerts = anyio.run(_integrity_failures, settings)
    event = alerts[f"AuditEvent/{event_id}/_history/{seq}"]
    assert event["type"]["code"] == "110113"  # DICOM Security Alert
    assert event["outcome"] == "8"


async def _swap_audit_bodies(url: str) -> tuple[str, int]:
    """The bodies (and key ids) of patient a's and b's search events exchanged: what moving
    rows' ciphertext around without the keys does. (event id, seq) of a's."""
    repository = SqlRepository(url)
    a = audit_event.c
    try:
        async with repository.writer.begin() as connection:
            found = select(a.seq, a.event_id, a.patient, a.body, a.key_id).where(
                a.subtype == "search-type", a.patient.in_(["a", "b"])
            )
            rows = list(await connection.execute(found.order_by(a.seq)))
            first = next(row for row in rows if row.patient == "a")
            second = next(row for row in rows if row.patient == "b")
            for one, other in ((first, second), (second, first)):
                await connection.execute(
                    update(audit_event)
                    .where(a.seq == one.seq)
                    .values(body=other.body, key_id=other.key_id)
                )
    finally:
        await repository.close()
    return str(first.event_id), int(first.seq)


async def _integrity_failures(settings: Settings) -> dict[str, dict[str, Any]]:
    async with key_admin.opened_repository(settings) as repository:
        found = await repository.audit.search(AuditQuery(subtype="integrity-failure"))
    events = [orjson.loads(body) for _, body in found]
    return {e["entity"][0]["what"]["reference"]: e for e in events}


async def _swap_current_bodies(url: str, first: str, second: str) -> None:
    repository = SqlRepository(url)
    try:
        async with repository.writer.begin() as connection:
            rows = {
                row.res_id: (row.body, row.key_id)
                for row in await connection.execute(
                    select(resource.c.res_id, resource.c.body, resource.c.key_id).where(
                        resource.c.res_id.in_([first, second])
                    )
                )
            }
            for one, other in ((first, second), (second, first)):
                body, key_id = rows[other]
                await connection.execute(
                    update(resource)
                    .where(resource.c.res_id == one)
                    .values(body=body, key_id=key_id)
                )
    finally:
        await repository.close()


async def _flip_history_byte(url: str, patient_id: str) -> None:
    repository = SqlRepository(url)
    h = resource_history.c
    try:
        async with repository.writer.begin() as connection:
            where = (h.res_id == patient_id, h.version == 1)
            body = (await connection.execute(select(h.body).where(*where))).scalar_one()
            altered = body[:-1] + bytes([body[-1] ^ 1])
            await connection.execute(update(resource_history).where(*where).values(body=altered))
    finally:
        await repository.close()


async def _unseal(url: str, patient_id: str) -> None:
    repository = SqlRepository(url)
    try:
        async with repository.writer.begin() as connection:
            body = orjson.dumps({"resourceType": "Patient", "id": patient_id})
            await connection.execute(
                update(resource)
                .where(resource.c.res_id == patient_id)
                .values(body=body, key_id=None)
            )
    finally:
        await repository.close()


# -- rotation --------------------------------------------------------------------------------
def test_rotating_the_kek_rewraps_every_key_and_retires_the_old_one(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with LiveServer(settings) as live, client(live) as http:
        assert http.put("/Patient/k", json=marked_patient("k", marker())).is_success
        before = anyio.run(_kek_ids, settings)
        done = anyio.run(key_admin.rotate_kek, settings)
        assert done.keys >= 3  # the patient's, the blind index's, the check key
        after = anyio.run(_kek_ids, settings)
        assert before != after
        assert after == {done.kek_id}
        assert http.get("/Patient/k").status_code == 200  # the running server goes on
    assert (tmp_path / "data.kek.old").exists()
    anyio.run(_open_and_close, settings)  # the new key file opens the database
    old = Settings(data_dir=tmp_path / "data", key_file=tmp_path / "data.kek.old")
    with pytest.raises(WrongKeyEncryptionKey):
        anyio.run(_open_and_close, old)


async def _kek_ids(settings: Settings) -> set[str]:
    repository = SqlRepository(settings.resolved_database_url())
    try:
        async with repository.reader.connect() as connection:
            rows = await connection.execute(
                select(data_key.c.kek_id).where(data_key.c.wrapped.is_not(None))
            )
            return {row.kek_id for row in rows}
    finally:
        await repository.close()


async def _version_keys(settings: Settings) -> dict[tuple[str, int], str | None]:
    repository = SqlRepository(settings.resolved_database_url())
    h = resource_history.c
    try:
        async with repository.reader.connect() as connection:
            rows = await connection.execute(select(h.res_id, h.version, h.key_id))
            return {(row.res_id, row.version): row.key_id for row in rows}
    finally:
        await repository.close()


def test_rotating_data_keys_reencrypts_every_version_while_the_server_serves(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    anyio.run(_open_and_close, settings)
    anyio.run(_insert_legacy_plaintext, settings)  # a version written before 0008
    with LiveServer(settings) as live, client(live) as http:
        assert http.get("/Patient/legacy").status_code == 200
        for n in range(4):
            patient = marked_patient(f"d{n}", marker())
            assert http.put(f"/Patient/d{n}", json=patient).is_success
            assert http.put(f"/Patient/d{n}", json={**patient, "active": True}).is_success
        before = anyio.run(_version_keys, settings)
        writes: list[int] = []

        def progress(done: int, total: int) -> None:  # the server keeps serving meanwhile
            response = http.put(
                "/Patient/d0", json={**marked_patient("d0", marker()), "gender": "other"}
            )
            writes.append(response.status_code)

        versions, deleted = asyncio.run(key_admin.rotate_dek(settings, 2, progress))
        after = anyio.run(_version_keys, settings)
        assert versions >= 9
        # audit bodies are not re-sealed (the chain covers their bytes): the four patients'
        # retired keys still seal the events about them, and stay until retention prunes those
        assert deleted == 0
        assert set(writes) <= {200}
        for ref, key_id in before.items():
            assert after[ref] is not None
            assert after[ref] != key_id, ref
        for n in range(4):
            for version in (1, 2):
                assert http.get(f"/Patient/d{n}/_history/{version}").status_code == 200
        found = http.get("/Patient", params={"family": "legacyfam"}).json()
        assert [e["resource"]["id"] for e in found["entry"]] == ["legacy"]  # now blind-indexed
        time.sleep(RECHECK_SECONDS)  # the server learns of the rotation (another process's)
        assert http.get("/Patient/nobody").status_code == 404  # an event without a patient
        sealing = anyio.run(_audit_sealing_keys, settings)
        assert {(owner, generation) for owner, generation, _ in sealing["d3"]} == {
            ("Patient/d3", 1)  # retired, still sealing (no write of d3 since)
        }
        assert ("Patient/d0", 2, False) in sealing["d0"]  # its writes during the rotation
        assert ("type:audit", 2, False) in sealing[None]  # a new class key at once
        assert len(opened_rows(settings)) > 20  # every event still opens, the chain verifies
        anyio.run(_unseal, settings.resolved_database_url(), "legacy")
        time.sleep(RECHECK_SECONDS)  # the server learns that no plaintext is left
        assert http.get("/Patient/legacy").status_code == 500  # no plaintext accepted any more


async def _audit_sealing_keys(
    settings: Settings,
) -> dict[str | None, set[tuple[str, int, bool]]]:
    """Per patient (None: no patient), the keys sealing their audit events: (owner,
    generation, retired)."""
    repository = SqlRepository(settings.resolved_database_url())
    a, k = audit_event.c, data_key.c
    query = select(a.patient, k.owner, k.generation, k.retired_us).join_from(
        audit_event, data_key, a.key_id == k.key_id
    )
    found: dict[str | None, set[tuple[str, int, bool]]] = {}
    try:
        async with repository.reader.connect() as connection:
            for row in await connection.execute(query):
                keys = found.setdefault(row.patient, set())
                keys.add((row.owner, row.generation, row.retired_us is not None))
    finally:
        await repository.close()
    return found


async def _insert_legacy_plaintext(settings: Settings) -> None:
    repository = SqlRepository(settings.resolved_database_url())
    body = orjson.dumps(
        {
            "resourceType": "Patient",
            "id": "legacy",
            "meta": {"versionId": "1", "lastUpdated": "2020-01-01T00:00:00Z"},
            "name": [{"family": "LegacyFam"}],
        }
    )
    row = {"res_type": "Patient", "res_id": "legacy", "version": 1, "last_updated": 1}
    try:
        async with repository.writer.begin() as connection:
            await connection.execute(
                text("UPDATE keystore_state SET value = 1 WHERE name = 'legacy_plaintext'")
            )
            await connection.execute(resource.insert().values(**row, deleted=False, body=body))
            await connection.execute(
                resource_history.insert().values(**row, method="PUT", deleted=False, body=body)
            )
    finally:
        await repository.close()


# -- Vault Transit ---------------------------------------------------------------------------
@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault() as fake:
        yield fake


def vault_settings(tmp_path: Path, vault: FakeVault) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        key_provider="vault",
        vault_url=vault.url,
        vault_token=vault.token,
    )


def test_the_server_runs_on_vault_transit_and_rotates_its_kek(
    tmp_path: Path, vault: FakeVault
) -> None:
    settings = vault_settings(tmp_path, vault)
    with LiveServer(settings) as live, client(live) as http:
        assert http.put("/Patient/v", json=marked_patient("v", marker())).is_success
        assert anyio.run(_kek_ids, settings) == {"vault:transit/santinel:v1"}
        done = anyio.run(key_admin.rotate_kek, settings)
        assert done.kek_id == "vault:transit/santinel:v2"
        assert anyio.run(_kek_ids, settings) == {"vault:transit/santinel:v2"}
        assert any("/rewrap/" in call for call in vault.calls)
        vault.min_decryption_version = 2  # the old version retired
        assert http.get("/Patient/v").status_code == 200
    anyio.run(_open_and_close, settings)
    assert not (tmp_path / "data.kek").exists()  # no local key file with Vault


def test_vault_rewraps_in_batches_and_a_failed_item_changes_no_key(
    tmp_path: Path, vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = vault_settings(tmp_path, vault)
    with LiveServer(settings) as live, client(live) as http:
        for n in range(5):
            assert http.put(f"/Patient/b{n}", json=marked_patient(f"b{n}", marker())).is_success
    monkeypatch.setattr(key_providers, "REWRAP_BATCH", 2)
    good = anyio.run(_wrapped_of, settings, "Patient/b3")
    anyio.run(_set_wrapped, settings, "Patient/b3", b"vault:v1:" + base64.b64encode(b"x" * 60))
    with pytest.raises(KeyProviderError, match="could not rewrap 1 of 2 keys"):
        anyio.run(key_admin.rotate_kek, settings)
    assert anyio.run(_kek_ids, settings) == {"vault:transit/santinel:v1"}  # none changed

    anyio.run(_set_wrapped, settings, "Patient/b3", good)
    vault.calls.clear()
    done = anyio.run(key_admin.rotate_kek, settings)
    assert done.keys >= 7  # 5 patients, the blind index, the check key (and the audit's)
    rewraps = [call for call in vault.calls if "/rewrap/" in call]
    assert len(rewraps) == (done.keys + 1) // 2  # batches of 2, not one call per key
    assert anyio.run(_kek_ids, settings) == {done.kek_id}
    vault.min_decryption_version = vault.latest  # only the newest version opens anything now
    with LiveServer(settings) as live, client(live) as http:
        assert http.get("/Patient/b3").status_code == 200


async def _wrapped_of(settings: Settings, owner: str) -> bytes:
    repository = SqlRepository(settings.resolved_database_url())
    try:
        async with repository.reader.connect() as connection:
            query = select(data_key.c.wrapped).where(data_key.c.owner == owner)
            return bytes((await connection.execute(query)).scalar_one())
    finally:
        await repository.close()


async def _set_wrapped(settings: Settings, owner: str, wrapped: bytes) -> None:
    repository = SqlRepository(settings.resolved_database_url())
    try:
        async with repository.writer.begin() as connection:
            await connection.execute(
                update(data_key).where(data_key.c.owner == owner).values(wrapped=wrapped)
            )
    finally:
        await repository.close()


# -- plaintext name indexes (opt-in) ---------------------------------------------------------
def test_plaintext_name_indexes_bring_contains_back_and_keep_the_rest_blind(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data", plaintext_name_indexes=True)
    m = marker()
    with LiveServer(settings) as live, client(live) as http:
        assert http.put("/Patient/n", json=marked_patient("n", m)).is_success
        middle = http.get("/Patient", params={"family:contains": m[4:10].lower()}).json()
        assert [e["resource"]["id"] for e in middle["entry"]] == ["n"]
        found = http.get("/Patient", params={"identifier": f"{NIR}|1{m}"}).json()
        assert [e["resource"]["id"] for e in found["entry"]] == ["n"]
        files = sqlite_files(settings)
    stored = b"".join(files.values())
    assert f"Fam{m}".encode() in stored  # the opted-in name index, in clear
    assert f"1{m}".encode() not in stored  # the identifier stays a blind index
    assert f"+33{m}".encode() not in stored


def test_a_server_refuses_names_indexed_the_other_way_until_a_reindex_switches_them(
    tmp_path: Path,
) -> None:
    blind = Settings(data_dir=tmp_path / "data")
    in_clear = Settings(data_dir=tmp_path / "data", plaintext_name_indexes=True)
    m = marker()
    with LiveServer(blind) as live, client(live) as http:
        assert http.put("/Patient/s", json=marked_patient("s", m)).is_success
    with pytest.raises(NameIndexesMismatch, match="indexes person names as blind indexes"):
        anyio.run(_open_and_close, in_clear)  # its name searches would miss Patient/s
    with pytest.raises(NameIndexesMismatch):
        asyncio.run(key_admin.rotate_blind_index(in_clear, 10, lambda *_: None))

    done = subprocess.run(
        [SANTINEL, "db", "reindex", "--data-dir", str(tmp_path / "data")],
        env={**clean_environment(), "SANTINEL_PLAINTEXT_NAME_INDEXES": "true"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with pytest.raises(NameIndexesMismatch, match="indexes person names in clear"):
        anyio.run(_open_and_close, blind)
    with LiveServer(in_clear) as live, client(live) as http:
        found = http.get("/Patient", params={"family:contains": m[4:10].lower()}).json()
        assert [e["resource"]["id"] for e in found["entry"]] == ["s"]  # the rows were rebuilt
