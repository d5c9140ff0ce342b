"""Two `santinel serve` processes on one PostgreSQL database, written to and read through both
at once, keep ONE audit chain: every seq once, no gap, every record linked, both nodes'
checkpoints signed with the one shared audit key, and `santinel audit verify` passes."""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path

import httpx

from santinel.audit.chain import ChainedRow, first_break
from santinel.settings import Settings
from santinel.storage.sql.repository import SqlRepository
from tests.integration.processes import ServerProcess, run_santinel
from tests.services import postgres_database

HEADERS = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
WORKERS = 6  # three per node
ROUNDS = 12
FAST_CHECKPOINTS = {"SANTINEL_AUDIT_CHECKPOINT_SECONDS": "0.5"}


def work(server: ServerProcess, tag: str, answered: list[int], lock: threading.Lock) -> None:
    """Writes (each commits with its records), reads and searches (group-committed records)."""
    with httpx.Client(base_url=server.base, headers=HEADERS, timeout=30, auth=server.auth) as http:
        for n in range(ROUNDS):
            pid = f"{tag}-{n}"
            codes = [
                http.put(f"/Patient/{pid}", json={"resourceType": "Patient", "id": pid}),
                http.post(
                    "/Observation",
                    json={
                        "resourceType": "Observation",
                        "status": "final",
                        "code": {"text": "two nodes"},
                        "subject": {"reference": f"Patient/{pid}"},
                    },
                ),
                http.get(f"/Patient/{pid}"),
                http.get("/Observation", params={"subject": f"Patient/{pid}"}),
            ]
            with lock:
                answered.extend(c.status_code for c in codes)


def chain(settings: Settings) -> list[ChainedRow]:
    async def read() -> list[ChainedRow]:
        repository = SqlRepository(settings.resolved_database_url())
        try:
            return [row async for row in repository.audit.rows(0)]
        finally:
            await repository.close()

    return asyncio.run(read())


def checkpoint_seqs(settings: Settings) -> list[int]:
    async def read() -> list[int]:
        repository = SqlRepository(settings.resolved_database_url())
        try:
            return [c.seq for c in await repository.audit.checkpoints()]
        finally:
            await repository.close()

    return asyncio.run(read())


def test_two_nodes_on_one_postgresql_keep_one_verifiable_chain(tmp_path: Path) -> None:
    with postgres_database() as url:
        # one data dir: the same audit key for both nodes (as a deployment shares the key file)
        flags = ["--database-url", url, "--data-dir", str(tmp_path / "shared")]
        first = ServerProcess(flags, tmp_path / "first.log", env=FAST_CHECKPOINTS)
        second = ServerProcess(flags, tmp_path / "second.log", env=FAST_CHECKPOINTS)
        answered: list[int] = []
        lock = threading.Lock()
        with first, second:
            threads = [
                threading.Thread(
                    target=work,
                    args=((first, second)[i % 2], f"n{i}-{uuid.uuid4().hex[:6]}", answered, lock),
                )
                for i in range(WORKERS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=300)
        assert len(answered) == WORKERS * ROUNDS * 4
        for node in (first, second):
            assert "audit trail write failed" not in node.stderr()
            assert "audit checkpoint failed" not in node.stderr()
        assert set(answered) <= {200, 201}, sorted(set(answered))

        rows = chain(Settings(database_url=url))
        seqs = [row.seq for row in rows]
        assert seqs == list(range(1, len(rows) + 1))  # every seq once, no gap
        assert first_break(rows, 0, "0" * 64) is None
        # every request left at least one record (writes: one per version and patient)
        assert len(rows) >= len(answered)
        signed = checkpoint_seqs(Settings(database_url=url))
        assert len(signed) >= 2
        assert len(set(signed)) == len(signed)

        done = run_santinel("audit", "verify", *flags)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith(f"OK: {len(rows)} records")
        assert f"{len(signed)} signed checkpoint(s) checked" in done.stdout
