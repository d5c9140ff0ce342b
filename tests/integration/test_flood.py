"""Under a bounded flood of costly searches from one client, another client keeps its normal
latency: the flooder is throttled before its searches run (two real clients, one real
`santinel serve` process on loopback)."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from santinel.settings import Settings
from tests.auth import BearerAuth, register_client
from tests.integration.processes import ServerProcess
from tests.integration.test_ratelimit_redis import add_client, token

FHIR = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
COSTLY = [
    ("_include", "Observation:subject"),
    ("_revinclude", "Provenance:target"),
    ("_count", "500"),
    ("_total", "accurate"),
    ("_sort", "-date"),
]
FLOOD_SECONDS = 4.0
FLOOD_CONNECTIONS = 8
SAMPLES = 40
RATIO_BOUND = 4.0  # generous: the machine is shared and noisy


def seed(admin: httpx.Client) -> str:
    """30 patients with 20 observations each (600 resources, one transaction)."""
    entries: list[dict[str, Any]] = []
    for p in range(30):
        patient = f"urn:uuid:{uuid.uuid4()}"
        entries.append(
            {
                "fullUrl": patient,
                "resource": {"resourceType": "Patient", "name": [{"family": f"Flood{p}"}]},
                "request": {"method": "POST", "url": "Patient"},
            }
        )
        for o in range(20):
            observation = {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "weight"},
                "subject": {"reference": patient},
                "effectiveDateTime": f"2024-01-{o + 1:02d}",
            }
            entries.append(
                {"resource": observation, "request": {"method": "POST", "url": "Observation"}}
            )
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    response = admin.post("/", json=bundle, timeout=120)
    assert response.status_code == 200, response.text[:500]
    first = response.json()["entry"][0]["response"]["location"]
    return str(first.split("/")[1])


def latencies(http: httpx.Client, path: str, count: int) -> list[float]:
    measured = []
    for _ in range(count):
        started = time.perf_counter()
        assert http.get(path).status_code == 200
        measured.append(time.perf_counter() - started)
    return measured


class Flood(threading.Thread):
    """FLOOD_CONNECTIONS connections sending costly searches back to back, for a bounded time."""

    def __init__(self, base: str, bearer: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.headers = {**FHIR, "Authorization": bearer}
        self.statuses: list[int] = []

    def run(self) -> None:
        asyncio.run(self._flood())

    async def _flood(self) -> None:
        deadline = time.monotonic() + FLOOD_SECONDS
        limits = httpx.Limits(max_connections=FLOOD_CONNECTIONS)
        async with httpx.AsyncClient(headers=self.headers, limits=limits, timeout=60) as http:

            async def worker() -> None:
                while time.monotonic() < deadline:
                    response = await http.get(f"{self.base}/Observation", params=COSTLY)
                    self.statuses.append(response.status_code)

            await asyncio.gather(*(worker() for _ in range(FLOOD_CONNECTIONS)))


def test_a_throttled_flood_leaves_other_clients_latency_normal(tmp_path: Path) -> None:
    data_dir = tmp_path / "flood"
    with ServerProcess(["--data-dir", str(data_dir)], tmp_path / "server.log") as server:
        settings = Settings(data_dir=data_dir)
        with httpx.Client(
            base_url=server.base, headers=FHIR, auth=server.auth, timeout=60
        ) as admin:
            patient = seed(admin)
        flooder = add_client(settings, rate_limit="20/minute")  # 5 costly searches, then 429
        bearer = f"Bearer {token(server.url, flooder).json()['access_token']}"
        reader_auth = BearerAuth(
            f"{server.url}/oauth/token", *register_client(settings), "system/*.rs"
        )
        with httpx.Client(
            base_url=server.base, headers=FHIR, auth=reader_auth, timeout=60
        ) as reader:
            latencies(reader, f"/Patient/{patient}", 10)  # warm up
            started = time.perf_counter()
            costly = httpx.get(
                f"{server.base}/Observation",
                params=COSTLY,
                headers={**FHIR, "Authorization": bearer},
            )
            one_costly_search = time.perf_counter() - started
            assert costly.status_code == 200
            quiet = statistics.median(latencies(reader, f"/Patient/{patient}", SAMPLES))
            flood = Flood(server.base, bearer)
            flood.start()
            time.sleep(0.5)
            during = statistics.median(latencies(reader, f"/Patient/{patient}", SAMPLES))
            flood.join(timeout=60)
    throttled = flood.statuses.count(429)
    served = flood.statuses.count(200)
    print(
        f"costly search {one_costly_search * 1000:.1f} ms; reader median quiet "
        f"{quiet * 1000:.2f} ms, during the flood {during * 1000:.2f} ms; flood: {served} "
        f"served, {throttled} throttled"
    )
    assert served <= 5  # 20 units, 4 per costly search (2 + 1 per include), one spent above
    assert throttled > 10 * served
    assert during <= RATIO_BOUND * quiet + 0.005
