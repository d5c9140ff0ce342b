"""Search interactions (R4 `search.html`): type, system (`_type`) and compartment search, with
stable paging through result snapshots, `_include`/`_revinclude`, `_total`, `_summary`, `_elements`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from santinel.auth.policy import AccessDecision, authorize
from santinel.auth.principal import Principal
from santinel.errors import InvalidSearch, Issue, NotFound
from santinel.fhir.bundle import Link, bundle
from santinel.fhir.json import parse_object
from santinel.fhir.outcome import operation_outcome
from santinel.fhir.search import registry
from santinel.fhir.search.query import Criterion, Limits, SearchQuery, parse_query
from santinel.fhir.subsetting import select_elements, summarize
from santinel.services import audit_context, guard
from santinel.services.authn import unauthorized
from santinel.services.request import FhirRequest, FhirResponse, is_digits
from santinel.storage.base import FhirRepository, StoredVersion

NOT_FORWARDED = frozenset({"_format", "_pretty", "_getpages", "_offset"})


@dataclass(frozen=True)
class SearchLimits:
    page_size: int  # this request's _count, already clamped
    max_results: int  # ids kept per result snapshot
    max_included: int  # resources added by _include/_revinclude per page
    max_include_depth: int  # rounds of :iterate
    max_chain_depth: int


async def search_type(
    repo: FhirRepository,
    request: FhirRequest,
    rtype: str,
    limits: SearchLimits,
    compartment: tuple[str, str] | None = None,
    *,
    decision: AccessDecision | None = None,
) -> FhirResponse:
    params = [(n, v) for n, v in request.params if n not in NOT_FORWARDED]
    query = parse_query(rtype, params, Limits(limits.max_chain_depth))
    if compartment is not None:
        query.conditions.append(guard.compartment_condition(compartment, rtype))
    guard.constrain(
        query, decision or guard.require(request.principal, "search-type", rtype), request.principal
    )
    _refuse_ignored_if_strict(request, query)
    ids = await repo.search_ids(query, limits.max_results + 1)
    complete = len(ids) <= limits.max_results
    refs = [f"{rtype}/{i}" for i in ids[: limits.max_results]]
    total = await _total(repo, query, len(refs), complete)
    self_url = _url(request, _scope_path(rtype, compartment), params)
    snapshot = None
    if len(refs) > limits.page_size:
        snapshot = await repo.save_snapshot(rtype, self_url, refs, complete, owner(request))
    return await _page(repo, request, query, refs, 0, limits, total, self_url, snapshot)


async def search_system(
    repo: FhirRepository, request: FhirRequest, limits: SearchLimits
) -> FhirResponse:
    """`GET [base]?_type=A,B&…`: only parameters common to all resources apply."""
    types_param = request.param("_type")
    types = sorted({t for t in (types_param or "").split(",") if t})
    if not types:
        raise InvalidSearch("A system-level search needs _type (e.g. _type=Patient,Practitioner).")
    params = [(n, v) for n, v in request.params if n not in NOT_FORWARDED and n != "_type"]
    refs: list[str] = []
    query = SearchQuery(types[0])
    for rtype in types:
        if registry.param(rtype, "_id") is None:
            raise InvalidSearch(f"_type: '{rtype[:64]}' is not a resource type.")
        query = parse_query(rtype, params, Limits(limits.max_chain_depth))
        decision = guard.require(request.principal, "search-type", rtype)
        guard.constrain(query, decision, request.principal)
        _refuse_ignored_if_strict(request, query)
        ids = await repo.search_ids(query, limits.max_results + 1 - len(refs))
        refs += [f"{rtype}/{i}" for i in ids]
    complete = len(refs) <= limits.max_results
    refs = refs[: limits.max_results]
    total = len(refs) if complete else None
    self_url = _url(request, "", [*params, ("_type", ",".join(types))])
    snapshot = (
        await repo.save_snapshot(None, self_url, refs, complete, owner(request))
        if len(refs) > limits.page_size
        else None
    )
    return await _page(repo, request, query, refs, 0, limits, total, self_url, snapshot)


async def next_page(
    repo: FhirRepository, request: FhirRequest, limits: SearchLimits
) -> FhirResponse:
    """`GET [base]?_getpages=ID&_offset=N`: a page of a stored result snapshot."""
    snapshot_id = request.param("_getpages") or ""
    offset_text = request.param("_offset") or "0"
    if not is_digits(offset_text):
        raise InvalidSearch("_offset must be a non-negative integer.")
    if request.principal is None:
        raise unauthorized()
    snapshot = await repo.load_snapshot(snapshot_id)
    if snapshot is None or snapshot.owner != owner(request):
        # another principal's result is as unknown as a missing one (to an anonymous caller:
        # it may be a token holder's, so a token is what is missing)
        if request.principal.anonymous:
            raise unauthorized()
        raise NotFound("This search result has expired or never existed; run the search again.")
    original = parse_qsl(snapshot.query.partition("?")[2], keep_blank_values=True)
    rtype = snapshot.resource_type or "Resource"
    query = parse_query(rtype, original) if snapshot.resource_type else SearchQuery(rtype)
    if snapshot.resource_type:
        # the principal's rights may have changed since the first page: check them again
        decision = guard.require(request.principal, "search-type", rtype)
        guard.constrain(query, decision, request.principal)
    total = snapshot.total if snapshot.complete else None
    return await _page(
        repo,
        request,
        query,
        snapshot.ids,
        int(offset_text),
        limits,
        total,
        snapshot.query,
        snapshot.id,
    )


def owner(request: FhirRequest) -> str:
    """Whom a result snapshot belongs to: its pages are served to that principal only."""
    p = request.principal
    return "|".join((p.client_id, p.patient or "", p.user or "")) if p else ""


async def require_visible(
    repo: FhirRepository, decision: AccessDecision, rtype: str, rid: str
) -> None:
    """For confined access, a resource outside the compartment or the v2 restrictions is
    answered exactly like a missing one (404)."""
    conditions = guard.confinement(decision, rtype)
    if not conditions:
        return
    id_param = registry.param(rtype, "_id")
    if id_param is None:
        raise NotFound(f"{rtype}/{rid} is not known.")
    query = SearchQuery(rtype, [Criterion(rtype, id_param, None, (rid,)), *conditions])
    if not await repo.search_ids(query, 1):
        raise NotFound(f"{rtype}/{rid} is not known.")


def _refuse_ignored_if_strict(request: FhirRequest, query: SearchQuery) -> None:
    if query.ignored and request.prefer("handling") == "strict":
        raise InvalidSearch(
            f"Unknown or unsupported search parameter(s): {'; '.join(query.ignored)}.",
            issue_code="not-supported",
        )


async def _total(
    repo: FhirRepository, query: SearchQuery, found: int, complete: bool
) -> int | None:
    if query.total == "none":
        return None
    if complete:
        return found
    return await repo.count(query) if query.total == "accurate" else None


async def _page(
    repo: FhirRepository,
    request: FhirRequest,
    query: SearchQuery,
    refs: list[str],
    offset: int,
    limits: SearchLimits,
    total: int | None,
    self_url: str,
    snapshot: str | None,
) -> FhirResponse:
    count = limits.page_size
    if request.param("_summary") == "count" or query.summary == "count":
        return FhirResponse(200, bundle("searchset", [], [Link("self", self_url)], total=total))
    window = [tuple(r.split("/", 1)) for r in refs[offset : offset + count]]
    matches = await repo.read_refs([(t, i) for t, i in window])
    included = await _includes(repo, query, matches, limits, request.principal)
    audit_context.note_served([*matches, *included])
    entries = [_entry(request.base_url, v, "match", query) for v in matches]
    entries += [_entry(request.base_url, v, "include", query) for v in included]
    if query.ignored:
        entries.append(_ignored_entry(query.ignored))
    links = [Link("self", self_url if offset == 0 else _page_url(request, snapshot, offset, count))]
    if snapshot and offset + count < len(refs):
        links.append(Link("next", _page_url(request, snapshot, offset + count, count)))
    if snapshot and offset > 0:
        links.append(Link("previous", _page_url(request, snapshot, max(0, offset - count), count)))
    return FhirResponse(200, bundle("searchset", entries, links, total=total))


async def _includes(
    repo: FhirRepository,
    query: SearchQuery,
    matches: list[StoredVersion],
    limits: SearchLimits,
    principal: Principal | None,
) -> list[StoredVersion]:
    """Included resources the principal may read: `_include` targets and `*` sources can be of
    any type, so each one is checked here, where they are fetched, not only the named types.
    Only readable ones lead further (`:iterate`): a path through a resource the principal
    cannot see would tell about it."""
    seen: set[tuple[str, str]] = {(v.resource_type, v.resource_id) for v in matches}
    found: list[StoredVersion] = []
    frontier: list[tuple[str, str]] = list(seen)
    for depth in range(limits.max_include_depth):
        candidates: list[tuple[str, str]] = []
        for include, reverse in [
            *((i, False) for i in query.includes),
            *((i, True) for i in query.revincludes),
        ]:
            if depth > 0 and not include.iterate:
                continue
            budget = limits.max_included - len(found) - len(candidates)
            if budget <= 0:
                break
            for ref in await repo.include_refs(frontier, include, reverse, budget):
                if ref not in seen:
                    seen.add(ref)
                    candidates.append(ref)
        round_refs = await _readable(repo, principal, candidates)
        if not round_refs:
            break
        found += await repo.read_refs(round_refs)
        frontier = round_refs
    return found


async def _readable(
    repo: FhirRepository, principal: Principal | None, refs: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The refs the principal may read, each type by its own decision; a confined one by a
    search on those ids with the decision pushed in (the same test as a read)."""
    by_type: dict[str, list[str]] = {}
    for rtype, rid in refs:
        by_type.setdefault(rtype, []).append(rid)
    kept: set[tuple[str, str]] = set()
    for rtype, ids in by_type.items():
        decision = authorize(principal, "read", rtype) if principal else None
        id_param = registry.param(rtype, "_id")
        if decision is None or not decision.allowed or id_param is None:
            continue
        conditions = guard.confinement(decision, rtype)
        if conditions:
            query = SearchQuery(rtype, [Criterion(rtype, id_param, None, tuple(ids)), *conditions])
            ids = [str(i) for i in await repo.search_ids(query, len(ids))]
        kept.update((rtype, i) for i in ids)
    return [r for r in refs if r in kept]


def _entry(base_url: str, stored: StoredVersion, mode: str, query: SearchQuery) -> dict[str, Any]:
    resource = parse_object(stored.body or b"", "stored resource")
    if query.summary not in (None, "false"):
        resource = summarize(resource, query.summary)
    if query.elements:
        resource = select_elements(resource, query.elements)
    return {
        "fullUrl": f"{base_url}/{stored.resource_type}/{stored.resource_id}",
        "resource": resource,
        "search": {"mode": mode},
    }


def _ignored_entry(ignored: list[str]) -> dict[str, Any]:
    issue = Issue("not-supported", f"Ignored search parameter(s): {'; '.join(ignored)}.", "warning")
    return {"resource": operation_outcome([issue]), "search": {"mode": "outcome"}}


def _scope_path(rtype: str, compartment: tuple[str, str] | None) -> str:
    return f"{compartment[0]}/{compartment[1]}/{rtype}" if compartment else rtype


def _url(request: FhirRequest, path: str, params: list[tuple[str, str]]) -> str:
    query = urlencode(params)
    return f"{request.base_url}/{path}" + (f"?{query}" if query else "")


def _page_url(request: FhirRequest, snapshot: str | None, offset: int, count: int) -> str:
    params = [("_getpages", snapshot or ""), ("_offset", str(offset)), ("_count", str(count))]
    for name in ("_format", "_pretty"):
        value = request.param(name)
        if value is not None:
            params.append((name, value))
    return f"{request.base_url}?{urlencode(params)}"
