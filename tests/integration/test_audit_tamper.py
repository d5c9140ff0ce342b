"""Tampering with the audit trail directly in the database, as its owner could, is caught by
`santinel audit verify` (a real subprocess), on a real SQLite file edited with the `sqlite3`
module while the server is stopped, and on a real PostgreSQL table.

One trail per backend is written by a real `santinel serve` process, with two signed
checkpoints taken by `santinel audit checkpoint` at known points and a few records after the
last one; every case tampers with a fresh copy (a file copy; `CREATE DATABASE … TEMPLATE`).

Bodies are sealed (AES-256-GCM, `storage.sql.audit_sealing`) and the chain covers them as
stored: `verify` needs no key for the chain, and with the data keys (the KEK beside the data
directory here) it also opens every body. What each case shows (also in the README, "Audit
trail"), tampering → how it is found:

- a record's body modified → its hash; that record is named;
- a search column (patient) modified → its hash; that record;
- a record deleted in the middle → the gap; the missing seq;
- the last record deleted while a checkpoint covers it → the checkpoint past the end;
- the records after the last checkpoint deleted → NOT detectable from the database alone;
- signed records deleted with their checkpoints → only an exported checkpoint file shows it;
- a forged record appended with a wrong hash → its hash; that record;
- a forged record inserted in the middle with a correct hash, the later ones renumbered → its
  body does not open at that place (with the data keys), or the displaced record's hash,
  recognised as moved by one (without); the forged record is named;
- two records' seq swapped → the hash; the first of them;
- a body rewritten and every later hash recomputed → the signed checkpoint after it; the
  stretch between the last matching checkpoint and that one (with the stored checkpoints
  deleted too: only the exported file shows it);
- a search column rewritten and every later hash recomputed → the column disagrees with the
  (opened) body; that record;
- a sealed body moved to another record, or given another key id, every later hash
  recomputed → it does not open under its AAD (event id, seq, key id); that record (without
  the data keys: only the checkpoints could tell);
- a clear body slipped in where the server seals, rehashed → refused as such; that record;
- the pruning anchor forged (moved forward, or a checkpoint signature reused) → its signature.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from santinel.audit.chain import link
from santinel.audit.records import AuditRecord
from santinel.fhir.resource import instant
from tests.integration.processes import ServerProcess, run_santinel
from tests.services import PG_ADMIN_URL, _admin, postgres_database

HEADERS = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
COLUMNS = (
    "event_id", "recorded_us", "patient", "client_id", "user_ref", "action", "outcome",
    "subtype", "entity", "body", "key_id",
)  # fmt: skip
# only the explicit `santinel audit checkpoint` calls sign: the trail's checkpoints are known
QUIET_CHECKPOINTS = {"SANTINEL_AUDIT_CHECKPOINT_SECONDS": "86400"}


# -- a trail written by a real server ---------------------------------------------------------
@dataclass
class Trail:
    backend: str
    flags: list[str]  # --data-dir (and --database-url) of the original
    checkpoints: tuple[int, int]  # the seqs the two signed checkpoints cover
    head: int  # the last seq; records after checkpoints[1] are not signed yet
    exported: Path  # `santinel audit checkpoints` output taken at the end


def workload(http: httpx.Client, tag: str, count: int) -> None:
    """Writes, reads, searches and refusals: every kind of record the trail holds."""
    for n in range(count):
        pid = f"{tag}-{n}"
        http.put(f"/Patient/{pid}", json={"resourceType": "Patient", "id": pid}).raise_for_status()
        obs = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "tamper"},
            "subject": {"reference": f"Patient/{pid}"},
        }
        http.post("/Observation", json=obs).raise_for_status()
        http.get(f"/Patient/{pid}").raise_for_status()
        http.get("/Observation", params={"subject": f"Patient/{pid}"}).raise_for_status()
    assert http.get("/Patient/nobody-here").status_code == 404
    assert httpx.get(f"{http.base_url}/Patient/{tag}-0").status_code == 401


def checkpoint_now(flags: list[str]) -> int:
    done = run_santinel("audit", "checkpoint", *flags)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split("seq ")[1].split(" ")[0])


def write_trail(backend: str, flags: list[str], folder: Path) -> Trail:
    server = ServerProcess(flags, folder / "server.log", env=QUIET_CHECKPOINTS)
    with (
        server,
        httpx.Client(base_url=server.base, headers=HEADERS, timeout=30, auth=server.auth) as http,
    ):
        workload(http, "t1", 3)
        first = checkpoint_now(flags)
        workload(http, "t2", 3)
        second = checkpoint_now(flags)
        workload(http, "t3", 1)
    server.stop()
    exported = folder / "checkpoints.ndjson"
    done = run_santinel("audit", "checkpoints", "--output", str(exported), *flags)
    assert done.returncode == 0, done.stderr
    trail = Trail(backend, flags, (first, second), 0, exported)
    with open_db(trail) as db:
        trail.head = db.scalar("SELECT max(seq) FROM audit_event")
    assert 10 < first < second < trail.head
    return trail


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def trail(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Trail]:
    folder = tmp_path_factory.mktemp(f"trail-{request.param}")
    if request.param == "sqlite":
        yield write_trail("sqlite", ["--data-dir", str(folder / "data")], folder)
        return
    with postgres_database() as url:
        flags = ["--database-url", url, "--data-dir", str(folder / "data")]
        yield write_trail("postgres", flags, folder)


@pytest.fixture
def copy(trail: Trail, tmp_path: Path) -> Iterator[Trail]:
    """A fresh copy of the trail (same audit key, same KEK beside its data directory) to
    tamper with."""
    data = Path(trail.flags[trail.flags.index("--data-dir") + 1])
    target = tmp_path / "data"
    shutil.copytree(data, target, ignore=shutil.ignore_patterns("tls"))
    shutil.copy(data.with_name("data.kek"), tmp_path / "data.kek")
    if trail.backend == "sqlite":
        flags = ["--data-dir", str(target)]
        yield Trail(trail.backend, flags, trail.checkpoints, trail.head, trail.exported)
        return
    original = trail.flags[1].rsplit("/", 1)[1]
    name = f"santinel_tamper_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{original}"'))
    try:
        url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
        flags = ["--database-url", url, "--data-dir", str(target)]
        yield Trail(trail.backend, flags, trail.checkpoints, trail.head, trail.exported)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- direct database access: the sqlite3 module, or asyncpg -----------------------------------
class Db:
    """SQL with `?` placeholders on either backend, each statement committed."""

    def __init__(self, trail: Trail) -> None:
        self.backend = trail.backend
        if self.backend == "sqlite":
            path = Path(trail.flags[1]) / "santinel.sqlite3"
            self.sqlite = sqlite3.connect(path, isolation_level=None)
        else:
            self.url = trail.flags[1]

    def execute(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.backend == "sqlite":
            return list(self.sqlite.execute(sql, params).fetchall())
        parts = sql.split("?")
        numbered = "".join(f"{p}${i}" for i, p in enumerate(parts[:-1], 1)) + parts[-1]
        return asyncio.run(self._pg(numbered, params))

    async def _pg(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        import asyncpg

        connection = await asyncpg.connect(self.url)
        try:
            return [tuple(r) for r in await connection.fetch(sql, *params)]
        finally:
            await connection.close()

    def scalar(self, sql: str, *params: Any) -> Any:
        return self.execute(sql, *params)[0][0]

    def record(self, seq: int) -> tuple[AuditRecord, str]:
        row = self.execute(
            f"SELECT {', '.join(COLUMNS)}, hash FROM audit_event WHERE seq = ?",  # noqa: S608
            seq,
        )[0]
        fields = dict(zip(COLUMNS, row[:-1], strict=True))
        fields["body"] = bytes(fields["body"])
        return AuditRecord(**fields), str(row[-1])

    def flip_body_byte(self, seq: int) -> None:
        """What editing a sealed body comes to without the key: other bytes."""
        body = self.record(seq)[0].body
        altered = body[:-1] + bytes([body[-1] ^ 1])
        self.execute("UPDATE audit_event SET body = ? WHERE seq = ?", altered, seq)

    def rehash_from(self, seq: int) -> None:
        """What an attacker who knows the algorithm (it is public) does after a change."""
        previous = str(self.scalar("SELECT hash FROM audit_event WHERE seq = ?", seq - 1))
        last = int(self.scalar("SELECT max(seq) FROM audit_event"))
        for n in range(seq, last + 1):
            record, _ = self.record(n)
            previous = link(previous, n, record)
            self.execute("UPDATE audit_event SET hash = ? WHERE seq = ?", previous, n)

    def renumber(self, from_seq: int, shift: int) -> None:
        """seq += shift for every record from `from_seq` (two steps: the key stays unique)."""
        self.execute("UPDATE audit_event SET seq = -seq WHERE seq >= ?", from_seq)
        self.execute("UPDATE audit_event SET seq = -seq + ? WHERE seq < 0", shift)

    def insert(self, seq: int, record: AuditRecord, chain_hash: str) -> None:
        values = [getattr(record, c) for c in COLUMNS]
        marks = ", ".join("?" for _ in range(len(COLUMNS) + 2))
        names = ", ".join(COLUMNS)
        sql = f"INSERT INTO audit_event (seq, {names}, hash) VALUES ({marks})"  # noqa: S608
        self.execute(sql, seq, *values, chain_hash)

    def close(self) -> None:
        if self.backend == "sqlite":
            self.sqlite.close()


@contextmanager
def open_db(trail: Trail) -> Iterator[Db]:
    db = Db(trail)
    try:
        yield db
    finally:
        db.close()


def verify(trail: Trail, *extra: str) -> tuple[int, str]:
    done = run_santinel("audit", "verify", *trail.flags, *extra)
    return done.returncode, done.stdout + done.stderr


def assert_caught(trail: Trail, seq: int, *extra: str, reason: str = "") -> str:
    code, output = verify(trail, *extra)
    assert code == 1, output
    assert f"first bad record: seq {seq}" in output, output
    assert reason in output, output
    return output


# -- the cases ----------------------------------------------------------------------------------
def test_an_untouched_trail_verifies(copy: Trail) -> None:
    code, output = verify(copy)
    assert code == 0, output
    assert output.startswith(f"OK: {copy.head} records")
    assert f"last seq {copy.head}" in output
    assert "2 signed checkpoint(s) checked" in output
    assert f"{copy.head - copy.checkpoints[1]} record(s) after the last checkpoint" in output
    code, output = verify(copy, "--checkpoints", str(copy.exported))
    assert code == 0, output
    assert "2 exported checkpoint(s) checked" in output


def test_a_modified_body(copy: Trail) -> None:
    with open_db(copy) as db:
        db.flip_body_byte(7)  # the body only, not the columns
        event_id = db.record(7)[0].event_id
    output = assert_caught(copy, 7, reason="hash mismatch")
    assert event_id in output


def test_a_modified_search_column(copy: Trail) -> None:
    with open_db(copy) as db:
        db.execute("UPDATE audit_event SET patient = ? WHERE seq = ?", "someone-else", 9)
    assert_caught(copy, 9, reason="hash mismatch")


def test_a_record_deleted_in_the_middle(copy: Trail) -> None:
    with open_db(copy) as db:
        db.execute("DELETE FROM audit_event WHERE seq = ?", 6)
    assert_caught(copy, 6, reason="missing")


def test_the_last_record_deleted_under_a_checkpoint(copy: Trail) -> None:
    """A checkpoint covers the head: deleting the head leaves a checkpoint past the end."""
    assert checkpoint_now(copy.flags) == copy.head
    with open_db(copy) as db:
        db.execute("DELETE FROM audit_event WHERE seq = ?", copy.head)
    assert_caught(copy, copy.head, reason="missing after seq")


def test_records_deleted_after_the_last_checkpoint_are_not_detectable(copy: Trail) -> None:
    """The honest limit: the unsigned tail (at most audit_checkpoint_seconds of records) can be
    cut without trace in the database; only copies made before (syslog/NDJSON exports) show it."""
    with open_db(copy) as db:
        db.execute("DELETE FROM audit_event WHERE seq > ?", copy.checkpoints[1])
    code, output = verify(copy, "--checkpoints", str(copy.exported))
    assert code == 0, output
    assert f"last seq {copy.checkpoints[1]}" in output
    assert "0 record(s) after the last checkpoint" in output


def test_signed_records_deleted_with_their_checkpoints(copy: Trail) -> None:
    """The owner deletes records AND the checkpoints covering them: the database alone looks
    consistent; the exported checkpoints do not."""
    cut = copy.checkpoints[0] + 1
    with open_db(copy) as db:
        db.execute("DELETE FROM audit_event WHERE seq >= ?", cut)
        db.execute("DELETE FROM audit_checkpoint WHERE seq >= ?", cut)
    code, output = verify(copy)
    assert code == 0, output  # undetectable from the database alone
    assert_caught(copy, cut, "--checkpoints", str(copy.exported), reason="(exported)")


def test_a_forged_record_appended(copy: Trail) -> None:
    with open_db(copy) as db:
        record, _ = db.record(copy.head)
        forged = AuditRecord(**{**record.__dict__, "event_id": uuid.uuid4().hex})
        db.insert(copy.head + 1, forged, "f" * 64)
    assert_caught(copy, copy.head + 1, reason="hash mismatch")


def test_a_forged_record_inserted_in_the_middle_with_a_correct_hash(copy: Trail) -> None:
    """The forger renumbers the later records and computes the forged record's hash: its body
    (without the data keys, a copied one) does not open at its place; and the record it
    displaced no longer links, and is recognised as moved by one."""
    with open_db(copy) as db:
        template, _ = db.record(8)
        forged = AuditRecord(**{**template.__dict__, "event_id": uuid.uuid4().hex})
        db.renumber(8, 1)
        previous = str(db.scalar("SELECT hash FROM audit_event WHERE seq = 7"))
        db.insert(8, forged, link(previous, 8, forged))
    output = assert_caught(copy, 8, reason="integrity check")  # it cannot seal for seq 8
    assert forged.event_id in output
    hide_the_kek(copy)  # the chain alone
    output = assert_caught(copy, 8, reason="inserted")
    assert forged.event_id in output


def test_two_records_swapped(copy: Trail) -> None:
    with open_db(copy) as db:
        db.execute("UPDATE audit_event SET seq = -1 WHERE seq = 10")
        db.execute("UPDATE audit_event SET seq = 10 WHERE seq = 11")
        db.execute("UPDATE audit_event SET seq = 11 WHERE seq = -1")
    assert_caught(copy, 10, reason="hash mismatch")


def test_a_rewritten_and_rehashed_chain_fails_on_the_signed_checkpoint(copy: Trail) -> None:
    """The chain verifies (the attacker recomputed it) but the checkpoint signed after the
    change does not match: the change lies between the two checkpoints."""
    target = copy.checkpoints[0] + 2
    with open_db(copy) as db:
        db.flip_body_byte(target)
        db.rehash_from(target)
    hide_the_kek(copy)  # the chain and signatures alone (with the KEK, the body fails to open)
    output = assert_caught(copy, copy.checkpoints[0] + 1, reason="rewritten and rehashed")
    assert f"seq {copy.checkpoints[0] + 1}..{copy.checkpoints[1]}" in output
    # the owner also deletes the stored checkpoints: the exported ones still catch it
    with open_db(copy) as db:
        db.execute("DELETE FROM audit_checkpoint")
    code, output = verify(copy)
    assert code == 0, output  # the database alone cannot tell
    assert_caught(copy, copy.checkpoints[0] + 1, "--checkpoints", str(copy.exported))
    restore_the_kek(copy)  # with the data keys, the record itself does not open
    assert_caught(copy, target, reason="integrity check")


def kek_of(trail: Trail) -> Path:
    data = Path(trail.flags[trail.flags.index("--data-dir") + 1])
    return data.with_name("data.kek")


def hide_the_kek(trail: Trail) -> None:
    kek_of(trail).rename(kek_of(trail).with_suffix(".hidden"))


def restore_the_kek(trail: Trail) -> None:
    kek_of(trail).with_suffix(".hidden").rename(kek_of(trail))


def test_a_rewritten_and_rehashed_search_column_is_pinned_down(copy: Trail) -> None:
    with open_db(copy) as db:
        target = int(
            db.scalar(
                "SELECT min(seq) FROM audit_event WHERE seq > ? AND patient IS NOT NULL",
                copy.checkpoints[1],
            )
        )
        db.execute("UPDATE audit_event SET patient = ? WHERE seq = ?", "someone-else", target)
        db.rehash_from(target)
        db.execute("DELETE FROM audit_checkpoint")
    assert_caught(copy, target, reason="patient column disagrees")


def after_the_checkpoints(db: Db, copy: Trail) -> tuple[int, int]:
    """Two records after the last checkpoint sealed with different keys (a patient's, the
    class key's), the stored checkpoints deleted: only the records themselves can tell."""
    rows = db.execute(
        "SELECT seq, key_id FROM audit_event WHERE seq > ? ORDER BY seq", copy.checkpoints[1]
    )
    first_seq, first_key = rows[0]
    other = next(seq for seq, key_id in rows if key_id != first_key)
    db.execute("DELETE FROM audit_checkpoint")
    return int(first_seq), int(other)


def test_a_sealed_body_moved_to_another_record_and_rehashed(copy: Trail) -> None:
    with open_db(copy) as db:
        target, source = after_the_checkpoints(db, copy)
        body, key_id = db.execute("SELECT body, key_id FROM audit_event WHERE seq = ?", source)[0]
        db.execute(
            "UPDATE audit_event SET body = ?, key_id = ? WHERE seq = ?", body, key_id, target
        )
        db.rehash_from(target)
    output = assert_caught(copy, target, reason="integrity check")
    assert "authentication tag" in output
    hide_the_kek(copy)
    code, output = verify(copy)  # the honest limit: without the data keys, nothing to see
    assert code == 0, output
    assert "not opened" in output


def test_a_key_id_changed(copy: Trail) -> None:
    with open_db(copy) as db:
        target, other = after_the_checkpoints(db, copy)
        other_key = db.scalar("SELECT key_id FROM audit_event WHERE seq = ?", other)
        db.execute("UPDATE audit_event SET key_id = ? WHERE seq = ?", other_key, target)
    assert_caught(copy, target, reason="hash mismatch")
    with open_db(copy) as db:
        db.rehash_from(target)
    assert_caught(copy, target, reason="integrity check")


def test_a_clear_body_slipped_in_where_the_server_seals(copy: Trail) -> None:
    with open_db(copy) as db:
        target, _ = after_the_checkpoints(db, copy)
        record, _ = db.record(target)
        clear = orjson.dumps({"resourceType": "AuditEvent", "id": record.event_id})
        db.execute("UPDATE audit_event SET body = ?, key_id = NULL WHERE seq = ?", clear, target)
        db.rehash_from(target)
    hide_the_kek(copy)  # seen without any key
    assert_caught(copy, target, reason="a body in clear where the server seals")


def test_pruning_keeps_the_rest_verifiable_and_a_forged_anchor_fails(copy: Trail) -> None:
    pruned = copy.checkpoints[0] + 2  # past the first checkpoint, before the second
    with open_db(copy) as db:
        cutoff = int(db.scalar("SELECT recorded_us FROM audit_event WHERE seq = ?", pruned + 1))
        earlier = int(db.scalar("SELECT max(recorded_us) FROM audit_event WHERE seq <= ?", pruned))
    assert earlier < cutoff - 2
    done = run_santinel("audit", "prune", "--before", instant(cutoff - 1), *copy.flags)
    assert done.returncode == 0, done.stderr
    assert f"through seq {pruned}" in done.stdout
    code, output = verify(copy, "--checkpoints", str(copy.exported))
    assert code == 0, output
    assert f"{copy.head - pruned} records (seq {pruned + 1}-{copy.head}" in output
    assert f"signed pruning anchor at seq {pruned}" in output
    # the exported checkpoint of the pruned records is reported, not failed
    assert "1 exported checkpoint(s) checked (1 of records pruned since)" in output
    with open_db(copy) as db:
        # 1: the owner prunes more by moving the anchor forward, keeping its signature
        moved = pruned + 3
        moved_hash = db.scalar("SELECT hash FROM audit_event WHERE seq = ?", moved)
        db.execute("DELETE FROM audit_event WHERE seq <= ?", moved)
        db.execute("UPDATE audit_anchor SET seq = ?, hash = ?", moved, moved_hash)
    assert_caught(copy, moved, reason="pruning anchor")
    with open_db(copy) as db:
        # 2: prunes up to a checkpoint, passing the checkpoint's signature off as the anchor's
        second, second_hash, signature = db.execute(
            "SELECT seq, hash, signature FROM audit_checkpoint WHERE seq = ?", copy.checkpoints[1]
        )[0]
        db.execute("DELETE FROM audit_event WHERE seq <= ?", second)
        db.execute(
            "UPDATE audit_anchor SET seq = ?, hash = ?, signature = ?",
            second, second_hash, signature,
        )  # fmt: skip
    assert_caught(copy, copy.checkpoints[1], reason="pruning anchor")


# -- exports (same real trail) ------------------------------------------------------------------
SYSLOG = re.compile(
    r"^<8[45]>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z [!-~]+ santinel - AUDIT "
    r'\[santinel@32473 seq="(?P<seq>\d+)" hash="(?P<hash>[0-9a-f]{64})"\] \ufeff(?P<msg>\{.*\})$'
)


def test_export_ndjson_and_syslog_stream_the_chain(copy: Trail, tmp_path: Path) -> None:
    target = tmp_path / "audit.ndjson"
    done = run_santinel(
        "audit", "export", "--since", "2000-01-01", "--output", str(target), *copy.flags
    )
    assert done.returncode == 0, done.stderr
    assert target.stat().st_mode & 0o777 == 0o600
    lines = [orjson.loads(line) for line in target.read_bytes().splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, copy.head + 1))
    with open_db(copy) as db:
        record, stored_hash = db.record(5)
    assert lines[4]["hash"] == stored_hash
    assert record.key_id is not None  # stored sealed, exported opened
    assert lines[4]["resource"]["id"] == record.event_id
    assert lines[4]["resource"]["subtype"][0]["code"] in (record.subtype, "110122")
    # --until excludes from that instant on (a FHIR instant of the 6th record's time)
    with open_db(copy) as db:
        sixth = int(db.scalar("SELECT recorded_us FROM audit_event WHERE seq = 6"))
    until = instant(sixth - 1)
    syslog = run_santinel(
        "audit", "export", "--since", "2000-01-01", "--until", until, "--format", "syslog",
        *copy.flags,
    )  # fmt: skip
    assert syslog.returncode == 0, syslog.stderr
    messages = syslog.stdout.splitlines()
    assert len(messages) == 5
    for number, message in enumerate(messages, start=1):
        match = SYSLOG.match(message)
        assert match is not None, message[:200]
        assert int(match["seq"]) == number
        assert orjson.loads(match["msg"])["resourceType"] == "AuditEvent"
    nothing = run_santinel("audit", "export", "--since", "2999-01-01", *copy.flags)
    assert nothing.returncode == 0
    assert nothing.stdout == ""
    bad = run_santinel("audit", "export", "--since", "yesterday", *copy.flags)
    assert bad.returncode == 2


def test_an_auditor_verifies_with_the_exported_public_key(copy: Trail, tmp_path: Path) -> None:
    """Without the private key: the exported checkpoints file carries the public key."""
    no_key = ("--audit-key-file", str(tmp_path / "not-here.pem"))
    code, output = verify(
        copy, *no_key, "--public-key", str(copy.exported), "--checkpoints", str(copy.exported)
    )
    assert code == 0, output
    assert "2 exported checkpoint(s) checked" in output
    # without a key, signatures cannot be checked: a usage error, not a verdict
    code, output = verify(copy, *no_key)
    assert code == 2, output
    assert "audit key" in output
    assert not (tmp_path / "not-here.pem").exists()  # verify never creates a key
