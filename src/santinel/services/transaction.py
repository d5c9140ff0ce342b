"""Transaction Bundles (R4 `http.html#transaction`): all entries apply, or none.

All writes run in ONE database transaction (`FhirRepository.run_write`), in the order the spec
sets whatever the Bundle's order: DELETE, POST, PUT/PATCH; reads (GET/HEAD) run once it has
committed. Before writing, every entry gets its final `Type/id` (new ids for creates, matches for
conditional ones) and every reference to another entry — `urn:uuid:`, `urn:oid:`, absolute
fullUrls, relative references resolved against the entry's fullUrl — and every conditional
reference (`Patient?identifier=…`) is rewritten to it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from santinel.auth.principal import Principal
from santinel.errors import BadRequest, FhirError, NotFound, PreconditionFailed
from santinel.fhir import references, validation
from santinel.fhir.json import JsonObject
from santinel.fhir.resource import new_id
from santinel.services import patch
from santinel.services.bundle_entries import ORDER, Entry
from santinel.services.confined_writes import confined
from santinel.services.instance import checked_id, write_delete, write_update
from santinel.services.request import parse_etag
from santinel.services.type_level import criteria_from, match_ids, parse_condition
from santinel.storage.base import StoredVersion, WriteTransaction
from santinel.types import ResourceId, ResourceType


@dataclass
class Outcome:
    """What one write entry did, for its `Bundle.entry.response`."""

    status: int
    stored: StoredVersion | None = None
    resource_type: str = ""
    resource_id: str = ""


@dataclass
class Plan:
    targets: dict[int, tuple[str, str] | None] = field(default_factory=dict)  # entry → (type, id)
    mapping: dict[str, str] = field(default_factory=dict)  # fullUrl / conditional ref → Type/id
    existing: set[int] = field(default_factory=set)  # conditional creates that matched


async def run(
    tx: WriteTransaction, entries: list[Entry], principal: Principal | None
) -> dict[int, Outcome]:
    """Every entry works through the transaction as `principal` may for its interaction (a
    refusal of one entry fails them all: nothing is committed)."""
    writes = sorted((e for e in entries if ORDER[e.method] < 3), key=lambda e: ORDER[e.method])
    plan = Plan()

    def as_entry(entry: Entry) -> WriteTransaction:
        return confined(tx, principal, entry.interaction())

    for entry in writes:
        await _target(as_entry(entry), entry, plan)
    _refuse_duplicates(writes, plan)
    for entry in writes:
        if entry.resource is not None:
            await _resolve_conditional_references(as_entry(entry), entry, plan)
    await tx.preload(_existing_targets(writes, plan))
    outcomes: dict[int, Outcome] = {}
    for entry in writes:
        try:
            outcomes[entry.index] = await _apply(as_entry(entry), entry, plan)
        except FhirError as error:
            raise at(entry, error) from None
    return outcomes


async def _target(tx: WriteTransaction, entry: Entry, plan: Plan) -> None:
    """Decide which resource the entry writes, before anything is written."""
    try:
        target = await _find_target(tx, entry, plan)
    except FhirError as error:
        raise at(entry, error) from None
    plan.targets[entry.index] = target
    if target is not None and entry.full_url:
        plan.mapping[entry.full_url] = f"{target[0]}/{target[1]}"


async def _find_target(tx: WriteTransaction, entry: Entry, plan: Plan) -> tuple[str, str] | None:
    rtype = ResourceType(entry.resource_type)
    if any(segment.startswith("$") for segment in entry.path):
        raise BadRequest(
            f"Operations ({entry.path[-1][:40]}) are not supported inside a transaction.",
            issue_code="not-supported",
        )
    if entry.method == "POST":
        condition = entry.headers.get("if-none-exist")
        if condition:
            found = await match_ids(tx, rtype, parse_condition(condition, "ifNoneExist"))
            if len(found) > 1:
                raise PreconditionFailed("ifNoneExist matches more than one resource.")
            if found:
                plan.existing.add(entry.index)
                return rtype, found[0]
        return rtype, new_id()
    if entry.is_conditional:
        found = await match_ids(tx, rtype, criteria_from(entry.params))
        if len(found) > 1:
            raise PreconditionFailed("The conditional URL matches more than one resource.")
        if found:
            return rtype, found[0]
        if entry.method == "PUT":
            body_id = (entry.resource or {}).get("id")
            return rtype, checked_id(body_id) if isinstance(body_id, str) else new_id()
        return None  # conditional DELETE / PATCH with no match
    if len(entry.path) != 2:
        raise BadRequest(f"{entry.method} needs a URL of the form Type/id.")
    return rtype, checked_id(entry.path[1])


def _existing_targets(writes: list[Entry], plan: Plan) -> list[tuple[ResourceType, ResourceId]]:
    """The resources whose current version the writes read (not those of new ids)."""
    return [
        (ResourceType(target[0]), ResourceId(target[1]))
        for entry in writes
        if (target := plan.targets.get(entry.index)) is not None
        and (entry.method != "POST" or entry.index in plan.existing)
    ]


def _refuse_duplicates(writes: list[Entry], plan: Plan) -> None:
    seen: dict[tuple[str, str], int] = {}
    for entry in writes:
        target = plan.targets.get(entry.index)
        if target is None or entry.index in plan.existing:
            continue
        if target in seen:
            raise BadRequest(
                f"Bundle.entry[{seen[target]}] and Bundle.entry[{entry.index}] both change "
                f"{target[0]}/{target[1]}; a transaction may change a resource once.",
                expression=(entry.where,),
            )
        seen[target] = entry.index


async def _resolve_conditional_references(tx: WriteTransaction, entry: Entry, plan: Plan) -> None:
    for reference in entry.references:
        if "?" not in reference or reference in plan.mapping or "://" in reference:
            continue
        rtype, _, query = reference.partition("?")
        found = await match_ids(tx, ResourceType(rtype), criteria_from(parse_qsl(query)))
        if len(found) != 1:
            problem = "no resource" if not found else "several resources"
            raise at(
                entry,
                PreconditionFailed(
                    f"The conditional reference '{reference[:100]}' matches {problem}.",
                ),
            )
        plan.mapping[reference] = f"{rtype}/{found[0]}"


async def _apply(tx: WriteTransaction, entry: Entry, plan: Plan) -> Outcome:
    target = plan.targets.get(entry.index)
    if target is None:  # conditional delete or patch that matched nothing
        if entry.method == "PATCH":
            raise NotFound("The conditional PATCH matches no resource.")
        return Outcome(204)
    rtype, rid = ResourceType(target[0]), ResourceId(target[1])
    expected = parse_etag(entry.headers["if-match"]) if "if-match" in entry.headers else None
    if entry.method == "DELETE":
        stored = await write_delete(tx, rtype, rid, expected)
        return Outcome(204, stored, rtype, rid)
    if entry.index in plan.existing:
        return Outcome(200, await tx.current(rtype, rid), rtype, rid)
    resource = _rewritten(entry, plan)
    if entry.method == "PATCH":
        stored = await patch.apply_in(tx, rtype, rid, resource, entry.headers, expected)
        return Outcome(200, stored, rtype, rid)
    body_id = resource.get("id")
    if entry.method == "PUT" and not entry.is_conditional and body_id not in (None, rid):
        raise BadRequest(f"The id in the body ('{str(body_id)[:64]}') differs from the URL.")
    resource = {**resource, "id": rid}
    validation.check_type(resource, rtype)
    if entry.method == "POST":
        stored = await tx.write_version(rtype, rid, resource, previous=None, method="POST")
        return Outcome(201, stored, rtype, rid)
    stored, created = await write_update(tx, rtype, rid, resource, expected)
    return Outcome(201 if created else 200, stored, rtype, rid)


def _rewritten(entry: Entry, plan: Plan) -> JsonObject:
    resolve = references.entry_resolver(plan.mapping, references.fullurl_base(entry.full_url))
    absolute = {
        url: target
        for url, target in plan.mapping.items()
        if "://" in url or url.startswith("urn:")
    }
    if not absolute and not any(resolve(reference) for reference in entry.references):
        return dict(entry.resource or {})  # nothing to rewrite: spare the deep copy
    resource: Any = references.rewrite(entry.resource or {}, resolve, absolute)
    return dict(resource)


def at(entry: Entry, error: FhirError) -> FhirError:
    """The same error, naming the entry that caused it."""
    return dataclasses.replace(
        error,
        diagnostics=f"{entry.where} ({entry.method} {'/'.join(entry.path)}): {error.diagnostics}",
        expression=error.expression or (entry.where,),
    )
