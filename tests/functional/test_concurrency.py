"""Concurrent writers over real HTTP, on SQLite and PostgreSQL: no lost update, no duplicate.

Each test fires its requests at once from one event loop (`httpx.AsyncClient`, one connection per
request), so the server really sees them interleaved.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx

from tests.services import TLS, LiveServer

HEADERS = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


def at_once(server: LiveServer, n: int, send: Send) -> list[httpx.Response]:
    """`send(client, i)` for i in 0..n-1, all in flight together; the responses in order of i."""

    async def main() -> list[httpx.Response]:
        results: dict[int, httpx.Response] = {}
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(
            base_url=server.base,
            headers=HEADERS,
            timeout=60,
            limits=limits,
            verify=TLS,
            auth=server.auth,
        ) as http:
            start = anyio.Event()

            async def one(i: int) -> None:
                await start.wait()
                results[i] = await send(http, i)

            async with anyio.create_task_group() as group:
                for i in range(n):
                    group.start_soon(one, i)
                await anyio.sleep(0.05)
                start.set()
        return [results[i] for i in range(n)]

    return anyio.run(main)


def patient(rid: str | None, family: str) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": family}]}
    if rid is not None:
        body["id"] = rid
    return body


def full_history(client: httpx.Client, url: str) -> list[dict[str, Any]]:
    """Every entry of an instance history, following `next` links (newest first)."""
    page = client.get(f"{url}/_history", params={"_count": 100}).json()
    entries: list[dict[str, Any]] = list(page["entry"])
    while nxt := next((k["url"] for k in page["link"] if k["relation"] == "next"), None):
        page = client.get(nxt).json()
        entries += page["entry"]
    return entries


def test_parallel_updates_with_the_same_if_match_let_exactly_one_win(
    server: LiveServer, client: httpx.Client
) -> None:
    rid = f"race-{uuid.uuid4().hex[:12]}"
    url = f"/Patient/{rid}"
    assert client.put(url, json=patient(rid, "V1")).status_code == 201

    responses = at_once(
        server,
        20,
        lambda http, i: http.put(
            url, json=patient(rid, f"Writer{i}"), headers={"If-Match": 'W/"1"'}
        ),
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] == 1, statuses
    assert statuses[412] + statuses[409] == 19, statuses
    for refused in (r for r in responses if r.status_code != 200):
        assert refused.json()["resourceType"] == "OperationOutcome"
    winner = next(i for i, r in enumerate(responses) if r.status_code == 200)
    current = client.get(url)
    assert current.json()["meta"]["versionId"] == "2"
    assert current.json()["name"][0]["family"] == f"Writer{winner}"
    assert client.get(f"{url}/_history").json()["total"] == 2


def test_parallel_updates_without_if_match_all_succeed_with_contiguous_versions(
    server: LiveServer, client: httpx.Client
) -> None:
    rid = f"pile-{uuid.uuid4().hex[:12]}"
    url = f"/Patient/{rid}"
    assert client.put(url, json=patient(rid, "V1")).status_code == 201

    responses = at_once(server, 20, lambda http, i: http.put(url, json=patient(rid, f"W{i}")))

    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
    versions = sorted(int(r.json()["meta"]["versionId"]) for r in responses)
    assert versions == list(range(2, 22))
    assert sorted(r.headers["etag"] for r in responses) == sorted(f'W/"{v}"' for v in range(2, 22))
    history = full_history(client, url)
    assert client.get(f"{url}/_history").json()["total"] == 21
    assert [int(e["resource"]["meta"]["versionId"]) for e in history] == list(range(21, 0, -1))
    # No update was lost: every writer's body is one of the versions, under the number it was told.
    told = {r.json()["meta"]["versionId"]: r.json()["name"][0]["family"] for r in responses}
    kept = {e["resource"]["meta"]["versionId"]: e["resource"]["name"][0]["family"] for e in history}
    assert told.items() <= kept.items()
    # Versions written one after the other also carry non-decreasing lastUpdated instants.
    instants = [e["resource"]["meta"]["lastUpdated"] for e in reversed(history)]
    assert instants == sorted(instants)


def test_parallel_update_as_create_on_a_new_id_creates_it_once(
    server: LiveServer, client: httpx.Client
) -> None:
    rid = f"born-{uuid.uuid4().hex[:12]}"
    url = f"/Patient/{rid}"

    responses = at_once(server, 16, lambda http, i: http.put(url, json=patient(rid, f"W{i}")))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: 15}, [r.text for r in responses]
    assert sorted(int(r.json()["meta"]["versionId"]) for r in responses) == list(range(1, 17))
    assert client.get(f"{url}/_history").json()["total"] == 16


def test_parallel_conditional_updates_on_a_new_id_make_one_resource_with_contiguous_versions(
    server: LiveServer, client: httpx.Client
) -> None:
    rid = f"cond-{uuid.uuid4().hex[:12]}"

    responses = at_once(
        server, 16, lambda http, i: http.put(f"/Patient?_id={rid}", json=patient(rid, f"W{i}"))
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: 15}, [r.text for r in responses]
    assert {r.json()["id"] for r in responses} == {rid}
    assert sorted(int(r.json()["meta"]["versionId"]) for r in responses) == list(range(1, 17))
    found = client.get("/Patient", params={"_id": rid}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [rid]
    history = full_history(client, f"/Patient/{rid}")
    assert [int(e["resource"]["meta"]["versionId"]) for e in history] == list(range(16, 0, -1))


def test_parallel_identical_conditional_creates_create_exactly_one_resource(
    server: LiveServer, client: httpx.Client
) -> None:
    # A create never keeps the client's id, so `_id=` cannot name the resource about to be made.
    # The condition below matches nothing before the race and whatever the race creates:
    # "a Basic resource changed after this instant" (no other test writes Basic meanwhile).
    marker = client.post(
        "/Basic", json={"resourceType": "Basic", "code": {"text": "race start marker"}}
    ).json()
    condition = f"_lastUpdated=gt{marker['meta']['lastUpdated']}"
    assert client.get(f"/Basic?{condition}").json()["entry"] == []
    body = {"resourceType": "Basic", "code": {"text": f"race {uuid.uuid4().hex}"}}

    responses = at_once(
        server,
        16,
        lambda http, i: http.post("/Basic", json=body, headers={"If-None-Exist": condition}),
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: 15}, [r.text for r in responses]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    matching = client.get(f"/Basic?{condition}").json()["entry"]
    assert [e["resource"]["id"] for e in matching] == list(ids)
    (rid,) = ids
    assert client.get(f"/Basic/{rid}/_history").json()["total"] == 1
