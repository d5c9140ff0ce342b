"""`FhirService.handle`: the one entry point from a `FhirRequest` to a `FhirResponse`.

The routing table below is also what the CapabilityStatement is generated from, so the statement
can only claim what really has a handler.
"""

from __future__ import annotations

from santinel import __version__
from santinel.errors import MethodNotAllowed, NotFound, UnknownResourceType
from santinel.fhir.resource_types import is_resource_type
from santinel.services import (
    audit_api,
    audit_context,
    bundles,
    capability,
    guard,
    history,
    instance,
    patch,
    search,
    type_level,
)
from santinel.services.operations import erase
from santinel.services.request import FhirRequest, FhirResponse
from santinel.services.search import SearchLimits
from santinel.settings import Settings
from santinel.storage.base import FhirRepository
from santinel.types import ResourceType

# (path shape, method) → interaction code (R4 `valueset-type-restful-interaction`)
ROUTES: dict[tuple[str, str], str] = {
    ("", "GET"): "search-system",
    ("", "POST"): "transaction",
    ("metadata", "GET"): "capabilities",
    ("_history", "GET"): "history-system",
    ("type", "GET"): "search-type",
    ("type", "POST"): "create",
    ("type", "PUT"): "conditional-update",
    ("type", "DELETE"): "conditional-delete",
    ("type", "PATCH"): "conditional-patch",
    ("type/_search", "POST"): "search-type",
    ("type/_history", "GET"): "history-type",
    ("type/id", "GET"): "read",
    ("type/id", "HEAD"): "read",
    ("type/id", "PUT"): "update",
    ("type/id", "DELETE"): "delete",
    ("type/id", "PATCH"): "patch",
    ("type/id/_history", "GET"): "history-instance",
    ("type/id/_history/vid", "GET"): "vread",
    ("type/id/_history/vid", "HEAD"): "vread",
    ("type/id/type", "GET"): "search-compartment",
}


def path_shape(path: tuple[str, ...]) -> str:
    """Classify the segments after the FHIR base (R4 `http.html#general`)."""
    if not path:
        return ""
    if path[0] in ("metadata", "_history") and len(path) == 1:
        return path[0]
    shape = ["type"]
    if len(path) >= 2:
        shape.append(
            "_search"
            if path[1] == "_search" and len(path) == 2
            else "_history"
            if path[1] == "_history" and len(path) == 2
            else "id"
        )
    if len(path) >= 3:
        shape.append(
            "_history" if path[2] == "_history" else "type" if is_resource_type(path[2]) else "?"
        )
    if len(path) == 4:
        shape.append("vid")
    if len(path) > 4:
        shape.append("?")
    return "/".join(shape)


def access_target(interaction: str, path: tuple[str, ...]) -> str:
    """The resource type an interaction is authorized on (`*`: every type)."""
    if interaction == "search-compartment":
        return path[2]
    if interaction == "history-system" or not path:
        return "*"  # the first segment is `_history`, not a type
    return path[0]


# Interactions whose handlers check access themselves (per type or per entry), or need none.
# Every other one is decided here, and the decision (compartment, v2 restrictions) travels to
# its handler: see `santinel.services.guard` for how each path applies it.
UNGUARDED = frozenset({"capabilities", "search-system", "transaction"})


def interaction_of(method: str, path: tuple[str, ...]) -> str | None:
    """The interaction a request asks for, or None (what the audit trail records even when the
    request is refused before it is routed)."""
    return ROUTES.get((path_shape(path), method))


class FhirService:
    def __init__(self, repository: FhirRepository, settings: Settings) -> None:
        self.repository = repository
        self.settings = settings

    async def handle(self, request: FhirRequest) -> FhirResponse:
        if audit_api.is_audit_request(request):
            scope = audit_context.current()
            if scope is not None and request.path[0] == "Patient":
                scope.interaction = audit_api.ACCESS_LOG
            return await audit_api.handle(self.repository, request)
        if erase.is_erase(request):
            scope = audit_context.current()
            if scope is not None:
                scope.interaction = erase.SUBTYPE
            return await erase.handle(self.repository, request)
        shape = path_shape(request.path)
        if shape.startswith("type") and not is_resource_type(request.path[0]):
            raise UnknownResourceType(f"'{request.path[0][:64]}' is not a FHIR R4 resource type.")
        interaction = ROUTES.get((shape, request.method))
        if interaction is None:
            if any(s == shape for s, _ in ROUTES):
                allowed = sorted(m for s, m in ROUTES if s == shape)
                raise MethodNotAllowed(
                    f"{request.method} is not allowed here.", headers={"Allow": ", ".join(allowed)}
                )
            raise NotFound("No FHIR interaction is defined at this URL.")
        scope = audit_context.current()
        if scope is not None and scope.interaction is None:
            scope.interaction = interaction  # a batch's entries keep the batch's
        return await self._run(interaction, request)

    async def _unguarded(
        self, interaction: str, request: FhirRequest, limits: SearchLimits
    ) -> FhirResponse:
        match interaction:
            case "capabilities":
                statement = capability.statement(request.base_url, __version__, ROUTES)
                return FhirResponse(200, statement)
            case "search-system" if request.param("_getpages") is not None:
                return await search.next_page(self.repository, request, limits)
            case "search-system":
                return await search.search_system(self.repository, request, limits)
            case _:  # transaction or batch: every entry is checked
                return await bundles.process(self, request)

    async def _run(self, interaction: str, request: FhirRequest) -> FhirResponse:
        repo, settings, path = self.repository, self.settings, request.path
        rtype = ResourceType(path[0]) if path else None
        count = history.page_size(request, settings.default_page_size, settings.max_page_size)
        limits = SearchLimits(
            count,
            settings.max_search_results,
            settings.max_included,
            settings.max_include_depth,
            settings.max_chain_depth,
        )
        if interaction in UNGUARDED:
            return await self._unguarded(interaction, request, limits)
        target = access_target(interaction, path)
        decision = guard.require(request.principal, interaction, target)
        if interaction.startswith("conditional-") or request.header("if-none-exist"):
            # a condition is a search: without search rights it would be an existence oracle
            guard.require(request.principal, "search-type", target)
        match interaction:
            case "conditional-patch" if rtype:
                return await patch.patch_conditional(repo, request, rtype)
            case "history-system":
                return await history.history(repo, request, None, None, count, decision)
            case "history-type":
                return await history.history(repo, request, rtype, None, count, decision)
            case "search-type" if rtype:
                return await search.search_type(repo, request, rtype, limits, decision=decision)
            case "create" if rtype:
                return await type_level.create(repo, request, rtype)
            case "conditional-update" if rtype:
                return await type_level.conditional_update(repo, request, rtype)
            case "conditional-delete" if rtype:
                return await type_level.conditional_delete(repo, request, rtype)
        rid = instance.checked_id(path[1])
        if rtype is None:
            raise NotFound("No FHIR interaction is defined at this URL.")
        if interaction in ("read", "vread", "history-instance"):
            await search.require_visible(repo, decision, rtype, rid)
        match interaction:
            case "read":
                return await instance.read(repo, request, rtype, rid)
            case "update":
                return await instance.update(repo, request, rtype, rid)
            case "delete":
                return await instance.delete(repo, request, rtype, rid)
            case "patch":
                return await patch.patch_instance(repo, request, rtype, rid)
            case "search-compartment":
                return await search.search_type(
                    repo, request, path[2], limits, (rtype, rid), decision=decision
                )
            case "history-instance":
                return await history.history(repo, request, rtype, rid, count, decision)
            case _:  # vread
                return await instance.vread(repo, request, rtype, rid, path[3], decision)
