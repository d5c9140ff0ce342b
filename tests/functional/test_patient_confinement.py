"""Patient-confined tokens (SMART `patient/` scopes, `user/` scopes of a Patient user) reach their
patient's record on every FHIR path, and nothing of another patient's.

Two patients, A and B, each with Encounters, Observations and Conditions; a few misfiled links
cross the records (an Observation of A pointing at B's Encounter, one of B pointing at A). With
A's token, every path must serve A's data and never B's: B's resources are never returned, and
the text `SECRET…` that each of B's resources carries never appears in a response.

Until the authorization-code flow issues patient-context tokens, they are minted here with the
server's own signing keys, with the claims the token endpoint issues.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from santinel.settings import Settings
from tests.auth import mint as mint
from tests.services import LiveServer

HEADERS = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
IDENT = "urn:test:confinement"
LAB = f"patient/Observation.rs?category={CATEGORY}|laboratory"
World = dict[str, str]


# -- tokens ---------------------------------------------------------------------------------


def http_with(server: LiveServer, token: str) -> httpx.Client:
    headers = {**HEADERS, "Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=server.base, headers=headers, timeout=30)


def patient_client(
    server: LiveServer, settings: Settings, scope: str, patient: str
) -> httpx.Client:
    return http_with(server, mint(server, settings, scope, patient=patient))


# -- data -----------------------------------------------------------------------------------


def observation(
    oid: str, subject: str, marker: str, *, category: str = "laboratory", **extra: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"text": marker},
        "identifier": [{"system": IDENT, "value": oid}],
        "subject": {"reference": f"Patient/{subject}"},
        **extra,
    }


def world_of(t: str) -> World:
    ids = {
        "pa": f"pa{t}",
        "pb": f"pb{t}",
        "ea": f"ea{t}",
        "eb": f"eb{t}",
        "oal": f"oal{t}",  # A, laboratory, during ea
        "oav": f"oav{t}",  # A, vital signs
        "oax": f"oax{t}",  # A, misfiled: points at B's Encounter
        "ob": f"ob{t}",  # B, laboratory, during eb
        "obx": f"obx{t}",  # B, misfiled: focus on Patient A, during A's Encounter
        "om": f"om{t}",  # B's at version 1, moved to A at version 2
        "ca": f"ca{t}",
        "cb": f"cb{t}",
        "pr": f"pr{t}",  # a Practitioner: holds no patient data
        "secret": f"SECRET{t}",
        "family_a": f"Alpha{t}",
    }
    return ids


def resources_of(w: World) -> list[dict[str, Any]]:
    secret = w["secret"]
    return [
        {"resourceType": "Practitioner", "id": w["pr"], "name": [{"family": "Doc"}]},
        {"resourceType": "Patient", "id": w["pa"], "name": [{"family": w["family_a"]}]},
        {"resourceType": "Patient", "id": w["pb"], "name": [{"family": secret}]},
        encounter(w["ea"], w["pa"], f"enc-{w['ea']}", "A's stay"),
        encounter(w["eb"], w["pb"], f"enc-{w['eb']}", secret),
        observation(
            w["oal"],
            w["pa"],
            "A's lab",
            encounter={"reference": f"Encounter/{w['ea']}"},
            performer=[{"reference": f"Practitioner/{w['pr']}"}],
        ),
        observation(w["oav"], w["pa"], "A's vitals", category="vital-signs"),
        observation(
            w["oax"], w["pa"], "A's misfiled", encounter={"reference": f"Encounter/{w['eb']}"}
        ),
        observation(w["ob"], w["pb"], secret, encounter={"reference": f"Encounter/{w['eb']}"}),
        observation(
            w["obx"],
            w["pb"],
            secret,
            focus=[{"reference": f"Patient/{w['pa']}"}],
            encounter={"reference": f"Encounter/{w['ea']}"},
        ),
        observation(w["om"], w["pb"], secret),
        observation(w["om"], w["pa"], "A's, moved from B"),  # version 2
        condition(w["ca"], w["pa"], "A's condition"),
        condition(w["cb"], w["pb"], secret),
    ]


def encounter(eid: str, subject: str, identifier: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "identifier": [{"system": IDENT, "value": identifier}],
        "serviceType": {"text": text},
        "subject": {"reference": f"Patient/{subject}"},
    }


def condition(cid: str, subject: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "code": {"text": text},
        "subject": {"reference": f"Patient/{subject}"},
    }


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    w = world_of(uuid.uuid4().hex[:10])
    w["seeded_at"] = datetime.now(UTC).replace(microsecond=0).isoformat()
    with httpx.Client(base_url=server.base, headers=HEADERS, auth=server.auth, timeout=30) as full:
        for resource in resources_of(w):
            url = f"/{resource['resourceType']}/{resource['id']}"
            assert full.put(url, json=resource).status_code in (200, 201)
    return w


@pytest.fixture
def full(client: httpx.Client) -> httpx.Client:
    return client


@pytest.fixture(params=["patient/*.cruds", "patient/*.rs"])
def reader_a(
    request: pytest.FixtureRequest, server: LiveServer, backend_settings: Settings, world: World
) -> Iterator[httpx.Client]:
    with patient_client(server, backend_settings, request.param, world["pa"]) as http:
        yield http


@pytest.fixture
def writer_a(
    server: LiveServer, backend_settings: Settings, world: World
) -> Iterator[httpx.Client]:
    with patient_client(server, backend_settings, "patient/*.cruds", world["pa"]) as http:
        yield http


# -- assertions -----------------------------------------------------------------------------

B_KEYS = ("pb", "eb", "ob", "obx", "cb")
A_KEYS = ("pa", "ea", "oal", "oav", "oax", "om", "ca")


def refs(bundle: dict[str, Any]) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if "resource" in e and "id" in e["resource"]
    }


def b_refs(w: World) -> set[str]:
    types = {"pb": "Patient", "eb": "Encounter", "ob": "Observation", "obx": "Observation"}
    return {f"{types.get(k, 'Condition')}/{w[k]}" for k in B_KEYS}


def nothing_of_b(response: httpx.Response, w: World) -> dict[str, Any]:
    """The Bundle, once checked to hold nothing of B (links may echo the search's values)."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert w["secret"] not in json.dumps(body.get("entry", []))
    assert not refs(body) & b_refs(w)
    return body


def found(
    http: httpx.Client,
    w: World,
    path: str,
    pairs: list[tuple[str, str]] | None = None,
    **params: Any,
) -> set[str]:
    """The `Type/id`s a search returns (checked to hold nothing of B)."""
    return refs(nothing_of_b(http.get(path, params=pairs or params), w))


def assert_status(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text


# -- reads ----------------------------------------------------------------------------------


def test_reads_of_the_other_patient_are_404_and_own_reads_work(
    reader_a: httpx.Client, world: World
) -> None:
    w = world
    for path in [
        f"Patient/{w['pb']}",
        f"Observation/{w['ob']}",
        f"Encounter/{w['eb']}",
        f"Condition/{w['cb']}",
        f"Observation/{w['ob']}/_history/1",
        f"Observation/{w['ob']}/_history",
        f"Patient/{w['pb']}/_history",
    ]:
        response = reader_a.get(f"/{path}")
        assert_status(response, 404)
        assert w["secret"] not in response.text
    for path in [
        f"Patient/{w['pa']}",
        f"Observation/{w['oal']}",
        f"Encounter/{w['ea']}",
        f"Condition/{w['ca']}",
        f"Observation/{w['oal']}/_history/1",
        f"Observation/{w['oal']}/_history",
        f"Practitioner/{w['pr']}",  # no patient data: readable with patient scopes
    ]:
        assert_status(reader_a.get(f"/{path}"), 200)


def test_searches_see_only_the_own_record(reader_a: httpx.Client, world: World) -> None:
    w = world
    assert found(reader_a, w, "/Observation", _id=w["ob"]) == set()
    assert found(reader_a, w, "/Observation", subject=f"Patient/{w['pb']}") == set()
    assert found(reader_a, w, "/Observation", **{"subject:Patient.name": w["secret"]}) == set()
    assert found(reader_a, w, "/Patient", _id=f"{w['pa']},{w['pb']}") == {f"Patient/{w['pa']}"}
    assert found(reader_a, w, "/Observation", **{"code:text": w["secret"]}) == set()
    assert found(reader_a, w, "/Observation", _id=w["oal"]) == {f"Observation/{w['oal']}"}
    own = found(reader_a, w, "/Observation", subject=f"Patient/{w['pa']}", _count=100)
    assert {f"Observation/{w[k]}" for k in ("oal", "oav", "oax", "om")} <= own
    chained = found(reader_a, w, "/Observation", **{"subject:Patient.name": w["family_a"]})
    assert f"Observation/{w['oal']}" in chained
    system = found(reader_a, w, "/", _type="Observation,Condition,Encounter", _count=100)
    assert {f"Condition/{w['ca']}", f"Encounter/{w['ea']}", f"Observation/{w['oal']}"} <= system


def test_chains_and_has_are_confined_inside(reader_a: httpx.Client, world: World) -> None:
    w = world
    # A's Observation `oax` points at B's Encounter: the chain must not match through it.
    through_b = {"encounter:Encounter.identifier": f"{IDENT}|enc-{w['eb']}"}
    assert found(reader_a, w, "/Observation", **through_b) == set()
    through_a = {"encounter:Encounter.identifier": f"{IDENT}|enc-{w['ea']}"}
    assert found(reader_a, w, "/Observation", **through_a) == {f"Observation/{w['oal']}"}
    # B's Observation `obx` points at A's Encounter and at A: `_has` must not see it.
    has_b = {"_has:Observation:encounter:identifier": f"{IDENT}|{w['obx']}"}
    assert found(reader_a, w, "/Encounter", **has_b) == set()
    focus_b = {"_has:Observation:focus:identifier": f"{IDENT}|{w['obx']}"}
    assert found(reader_a, w, "/Patient", **focus_b) == set()
    has_a = {"_has:Observation:encounter:identifier": f"{IDENT}|{w['oal']}"}
    assert found(reader_a, w, "/Encounter", **has_a) == {f"Encounter/{w['ea']}"}


def test_includes_never_bring_the_other_patient(reader_a: httpx.Client, world: World) -> None:
    w = world
    oax, oal = f"Observation/{w['oax']}", f"Observation/{w['oal']}"
    pa, ea = f"Patient/{w['pa']}", f"Encounter/{w['ea']}"
    include = {"_id": w["oax"], "_include": "Observation:encounter"}
    assert found(reader_a, w, "/Observation", **include) == {oax}
    assert found(reader_a, w, "/Observation", _id=w["oax"], _include="*") == {oax, pa}
    iterate = [
        ("_id", w["oal"]),
        ("_include", "Observation:encounter"),
        ("_include", "Observation:performer"),
        ("_include:iterate", "Encounter:subject"),
    ]
    assert found(reader_a, w, "/Observation", iterate) == {
        oal,
        ea,
        pa,
        f"Practitioner/{w['pr']}",
    }
    # from A's `oax`, B's Encounter is not included, nor followed further to B
    crossing = [("_id", w["oax"]), *iterate[1:]]
    assert found(reader_a, w, "/Observation", crossing) == {oax}
    rev = found(reader_a, w, "/Patient", _id=w["pa"], _revinclude="Observation:focus")
    assert rev == {pa}
    rev_enc = found(reader_a, w, "/Encounter", _id=w["ea"], _revinclude="Observation:encounter")
    assert rev_enc == {ea, oal}
    assert oal in found(reader_a, w, "/Encounter", _id=w["ea"], _revinclude="*")
    subject = found(reader_a, w, "/Patient", _id=w["pa"], _revinclude="Observation:subject")
    assert {pa, oal, oax} <= subject


def test_compartment_search_of_the_other_patient_is_empty(
    reader_a: httpx.Client, world: World
) -> None:
    w = world
    other = nothing_of_b(reader_a.get(f"/Patient/{w['pb']}/Observation"), w)
    assert other.get("entry", []) == []
    own = found(reader_a, w, f"/Patient/{w['pa']}/Observation", _count=100)
    assert f"Observation/{w['oal']}" in own


def test_history_shows_only_own_versions(reader_a: httpx.Client, world: World) -> None:
    w = world
    since = w["seeded_at"]
    typed = found(reader_a, w, "/Observation/_history", _count=1000, _since=since)
    assert {f"Observation/{w['oal']}", f"Observation/{w['om']}"} <= typed
    system = found(reader_a, w, "/_history", _count=1000, _since=since)
    assert {f"Patient/{w['pa']}", f"Condition/{w['ca']}", f"Observation/{w['oal']}"} <= system
    # the Observation moved from B to A: A sees its version 2, never B's version 1
    moved = nothing_of_b(reader_a.get(f"/Observation/{w['om']}/_history"), w)
    assert [e["response"]["etag"] for e in moved["entry"]] == ['W/"2"']
    assert_status(reader_a.get(f"/Observation/{w['om']}/_history/1"), 404)
    assert_status(reader_a.get(f"/Observation/{w['om']}/_history/2"), 200)


def test_paging_links_stay_with_the_patient_who_searched(
    server: LiveServer, backend_settings: Settings, reader_a: httpx.Client, world: World
) -> None:
    w = world
    first = reader_a.get("/Observation", params={"subject": f"Patient/{w['pa']}", "_count": 1})
    next_url = next(link["url"] for link in first.json()["link"] if link["relation"] == "next")
    nothing_of_b(reader_a.get(next_url), w)
    with patient_client(server, backend_settings, "patient/*.rs", w["pb"]) as other:
        assert_status(other.get(next_url), 404)


# -- writes ---------------------------------------------------------------------------------


def test_writes_to_the_other_patient_are_403(
    writer_a: httpx.Client, full: httpx.Client, world: World
) -> None:
    w = world
    ob = full.get(f"/Observation/{w['ob']}").json()
    json_patch = {"Content-Type": "application/json-patch+json"}
    move = [{"op": "replace", "path": "/subject/reference", "value": f"Patient/{w['pa']}"}]
    refused = [
        writer_a.put(f"/Observation/{w['ob']}", json={**ob, "code": {"text": "changed"}}),
        writer_a.put(
            f"/Observation/{w['ob']}", json={**ob, "subject": {"reference": f"Patient/{w['pa']}"}}
        ),
        writer_a.patch(f"/Observation/{w['ob']}", json=move, headers=json_patch),
        writer_a.delete(f"/Observation/{w['ob']}"),
        writer_a.delete(f"/Patient/{w['pb']}"),
        writer_a.post("/Observation", json=observation("x", w["pb"], "for B")),
        writer_a.put(f"/Observation/new{w['ob']}", json=observation(f"new{w['ob']}", w["pb"], "b")),
        # in A's record, but also in B's (B as performer): a write into B's record too
        writer_a.post(
            "/Observation",
            json=observation(
                "x", w["pa"], "shared", performer=[{"reference": f"Patient/{w['pb']}"}]
            ),
        ),
        writer_a.post("/Patient", json={"resourceType": "Patient"}),
        # types without patient data are read-only for patient scopes; others out of reach
        writer_a.post("/Practitioner", json={"resourceType": "Practitioner"}),
        writer_a.get("/Task"),
    ]
    for response in refused:
        assert_status(response, 403)
        assert w["secret"] not in response.text
    after = full.get(f"/Observation/{w['ob']}")
    assert after.json()["meta"]["versionId"] == ob["meta"]["versionId"]
    assert after.json()["subject"]["reference"] == f"Patient/{w['pb']}"
    assert_status(full.get(f"/Patient/{w['pb']}"), 200)
    assert full.get("/Observation", params={"code:text": "for B"}).json()["total"] == 0


def test_a_patient_cannot_move_their_data_to_another_patient(
    writer_a: httpx.Client, full: httpx.Client, world: World
) -> None:
    w = world
    oid = f"mv{uuid.uuid4().hex[:10]}"
    assert_status(writer_a.put(f"/Observation/{oid}", json=observation(oid, w["pa"], "mine")), 201)
    to_b = observation(oid, w["pb"], "mine")
    assert_status(writer_a.put(f"/Observation/{oid}", json=to_b), 403)
    move = [{"op": "replace", "path": "/subject/reference", "value": f"Patient/{w['pb']}"}]
    patched = writer_a.patch(
        f"/Observation/{oid}", json=move, headers={"Content-Type": "application/json-patch+json"}
    )
    assert_status(patched, 403)
    stored = full.get(f"/Observation/{oid}").json()
    assert stored["subject"]["reference"] == f"Patient/{w['pa']}"
    assert stored["meta"]["versionId"] == "1"


def test_own_writes_work(writer_a: httpx.Client, world: World) -> None:
    w = world
    created = writer_a.post("/Observation", json=observation("ignored", w["pa"], "by A"))
    assert_status(created, 201)
    oid = created.json()["id"]
    body = {**created.json(), "code": {"text": "by A, updated"}}
    assert_status(writer_a.put(f"/Observation/{oid}", json=body), 200)
    merge = {"Content-Type": "application/merge-patch+json"}
    assert_status(
        writer_a.patch(f"/Observation/{oid}", json={"status": "amended"}, headers=merge), 200
    )
    own_patient = writer_a.get(f"/Patient/{w['pa']}").json()
    assert_status(writer_a.put(f"/Patient/{w['pa']}", json={**own_patient, "gender": "other"}), 200)
    assert_status(writer_a.delete(f"/Observation/{oid}"), 200)
    assert_status(writer_a.get(f"/Observation/{oid}"), 404)  # deleted: out of any compartment


def test_conditional_writes_never_match_the_other_patient(
    writer_a: httpx.Client, full: httpx.Client, world: World
) -> None:
    w = world
    b_ident = f"{IDENT}|{w['ob']}"
    mine = {k: v for k, v in observation("x", w["pa"], "conditional").items() if k != "id"}
    mine["identifier"] = [{"system": IDENT, "value": f"cond{uuid.uuid4().hex[:8]}"}]
    created = writer_a.post(
        "/Observation", json=mine, headers={"If-None-Exist": f"identifier={b_ident}"}
    )
    assert_status(created, 201)  # B's match is invisible: a new resource, not B's
    assert w["secret"] not in created.text
    updated = writer_a.put(f"/Observation?identifier={b_ident}", json=mine)
    assert_status(updated, 201)
    assert updated.json()["id"] != w["ob"]
    deleted = writer_a.delete(f"/Observation?identifier={b_ident}")
    assert_status(deleted, 200)
    patch = writer_a.patch(
        f"/Observation?identifier={b_ident}",
        json={"status": "amended"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert_status(patch, 404)
    # the criteria match nothing of A's, and the body names B's id: still B's resource
    onto_b = writer_a.put("/Observation?identifier=nothing", json={**mine, "id": w["ob"]})
    assert_status(onto_b, 403)
    stored = full.get(f"/Observation/{w['ob']}")
    assert_status(stored, 200)
    assert stored.json()["code"]["text"] == w["secret"]
    existing = writer_a.post(
        "/Observation", json=mine, headers={"If-None-Exist": f"identifier={IDENT}|{w['oal']}"}
    )
    assert_status(existing, 200)
    assert existing.json()["id"] == w["oal"]


def test_batch_entries_are_confined_one_by_one(writer_a: httpx.Client, world: World) -> None:
    w = world
    entries = [
        {"request": {"method": "GET", "url": f"Observation/{w['ob']}"}},
        {"request": {"method": "GET", "url": f"Observation/{w['oal']}"}},
        {"request": {"method": "GET", "url": f"Observation?_id={w['ob']},{w['oal']}"}},
        {"request": {"method": "DELETE", "url": f"Condition/{w['cb']}"}},
        {
            "resource": observation("x", w["pb"], "batch for B"),
            "request": {"method": "POST", "url": "Observation"},
        },
        {
            "resource": observation("x", w["pa"], "batch for A"),
            "request": {"method": "POST", "url": "Observation"},
        },
    ]
    response = writer_a.post(
        "/", json={"resourceType": "Bundle", "type": "batch", "entry": entries}
    )
    body = nothing_of_b(response, w)
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == [
        "404 Not Found",
        "200 OK",
        "200 OK",
        "403 Forbidden",
        "403 Forbidden",
        "201 Created",
    ]
    searched = body["entry"][2]["resource"]
    assert refs(searched) == {f"Observation/{w['oal']}"}


def test_a_transaction_with_one_entry_outside_fails_whole(
    writer_a: httpx.Client, full: httpx.Client, world: World
) -> None:
    w = world
    marker = f"tx{uuid.uuid4().hex[:10]}"
    encounter_url = f"urn:uuid:{uuid.uuid4()}"
    own = [
        {
            "fullUrl": encounter_url,
            "resource": {
                k: v for k, v in encounter("x", w["pa"], marker, marker).items() if k != "id"
            },
            "request": {"method": "POST", "url": "Encounter"},
        },
        {
            "resource": observation("x", w["pa"], marker, encounter={"reference": encounter_url}),
            "request": {"method": "POST", "url": "Observation"},
        },
    ]
    outside = [
        {
            "resource": observation("x", w["pb"], marker),
            "request": {"method": "POST", "url": "Observation"},
        },
        {"request": {"method": "DELETE", "url": f"Observation/{w['ob']}"}},
        {
            "resource": observation(w["ob"], w["pa"], marker),
            "request": {"method": "PUT", "url": f"Observation/{w['ob']}"},
        },
        {
            "resource": observation("x", w["pa"], marker),
            "request": {
                "method": "POST",
                "url": "Observation",
                "ifNoneExist": f"identifier={IDENT}|{w['ob']}",
            },
        },
    ]
    for bad in outside[:3]:
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [*own, bad]}
        response = writer_a.post("/", json=bundle)
        assert_status(response, 403)
        assert w["secret"] not in response.text
    for path, params in [
        ("/Observation", {"code:text": marker}),
        ("/Encounter", {"identifier": f"{IDENT}|{marker}"}),
    ]:
        assert full.get(path, params={**params, "_summary": "count"}).json()["total"] == 0
    assert_status(full.get(f"/Observation/{w['ob']}"), 200)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [*own, outside[3]]}
    done = nothing_of_b(writer_a.post("/", json=bundle), w)
    assert [e["response"]["status"] for e in done["entry"]] == ["201 Created"] * 3
    stored = full.get("/Observation", params={"code:text": marker}).json()
    assert len(stored["entry"]) == 2
    assert {e["resource"]["subject"]["reference"] for e in stored["entry"]} == {
        f"Patient/{w['pa']}"
    }


# -- v2 restrictions and user scopes -----------------------------------------------------------


def test_a_v2_category_restriction_shows_only_lab_results_of_the_patient(
    server: LiveServer, backend_settings: Settings, world: World
) -> None:
    w = world
    with patient_client(server, backend_settings, LAB, w["pa"]) as lab:
        seen = found(lab, w, "/Observation", _count=100)
        assert f"Observation/{w['oal']}" in seen
        assert f"Observation/{w['oav']}" not in seen
        assert_status(lab.get(f"/Observation/{w['oav']}"), 404)
        assert_status(lab.get(f"/Observation/{w['oal']}"), 200)
        history = found(lab, w, "/Observation/_history", _count=1000)
        assert f"Observation/{w['oav']}" not in history
        assert_status(lab.get(f"/Condition/{w['ca']}"), 403)
    writes = LAB.replace(".rs?", ".cruds?")
    with patient_client(server, backend_settings, writes, w["pa"]) as lab_writer:
        vital = observation("x", w["pa"], "vital", category="vital-signs")
        assert_status(lab_writer.post("/Observation", json=vital), 403)
        assert_status(lab_writer.post("/Observation", json=observation("x", w["pa"], "lab")), 201)


def test_user_scopes_of_a_patient_user_are_confined_too(
    server: LiveServer, backend_settings: Settings, world: World
) -> None:
    w = world
    token = mint(server, backend_settings, "user/*.rs", fhirUser=f"Patient/{w['pa']}")
    with http_with(server, token) as user:
        assert_status(user.get(f"/Observation/{w['ob']}"), 404)
        assert_status(user.get(f"/Observation/{w['oal']}"), 200)
        assert found(user, w, "/Observation", _id=f"{w['ob']},{w['oal']}") == {
            f"Observation/{w['oal']}"
        }
