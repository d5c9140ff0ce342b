"""Writes under an access decision: every write path works through `confined(tx, …)`.

Create, update, patch, delete, their conditional forms and transaction entries all touch the
database through a `WriteTransaction`; the wrapper returned here applies the principal's
decision for the interaction to what they touch:

- the current version of a resource about to change (`current`, `write_version(previous=…)`)
  must be writable: a live resource outside the compartment (or in another patient's too, or
  failing a write scope's restrictions) is 403, before any other check can tell about it;
- the body being stored must be writable too: a patient cannot create an Observation about
  another patient, nor move their own to another patient;
- a condition (If-None-Exist, conditional update/delete/patch, conditional references in a
  transaction) is a search confined like any search of that principal, so it never matches, and
  never tells about, a resource the principal cannot see.

A transaction fails whole on the first refusal: the error leaves `run_write`, which rolls back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from santinel.auth.policy import AccessDecision
from santinel.auth.principal import Principal
from santinel.errors import Forbidden
from santinel.fhir.json import parse_object
from santinel.fhir.search.query import SearchQuery, parse_criteria
from santinel.services import guard
from santinel.services.authn import unauthorized
from santinel.storage.base import Method, StoredVersion, WriteTransaction
from santinel.types import ResourceId, ResourceType

OUTSIDE = "The access token does not allow writing this resource (outside the patient's record)."
# Interactions that change an existing resource: its current version must be writable.
CHANGES = frozenset(
    {
        "update",
        "patch",
        "delete",
        "conditional-update",
        "conditional-patch",
        "conditional-delete",
    }
)


def confined(tx: WriteTransaction, principal: Principal | None, interaction: str) -> ConfinedTx:
    """`tx` seen through `principal`'s decisions for `interaction` (create, update, …)."""
    if principal is None:
        raise unauthorized()
    return ConfinedTx(tx, principal, interaction)


class ConfinedTx:
    """A `WriteTransaction` that refuses what the principal may not write or find."""

    def __init__(self, tx: WriteTransaction, principal: Principal, interaction: str) -> None:
        self.tx = tx
        self.principal = principal
        self.interaction = interaction
        self._decisions: dict[str, AccessDecision] = {}

    def decision(self, resource_type: str) -> AccessDecision:
        if resource_type not in self._decisions:
            self._decisions[resource_type] = guard.require(
                self.principal, self.interaction, resource_type
            )
        return self._decisions[resource_type]

    async def current(
        self, resource_type: ResourceType, resource_id: ResourceId
    ) -> StoredVersion | None:
        found = await self.tx.current(resource_type, resource_id)
        if self.interaction in CHANGES and found is not None:
            self._check_existing(found)
        return found

    async def preload(self, refs: Iterable[tuple[ResourceType, ResourceId]]) -> None:
        await self.tx.preload(refs)  # nothing is returned: `current` checks what it answers

    async def write_version(
        self,
        resource_type: ResourceType,
        resource_id: ResourceId,
        resource: dict[str, Any] | None,
        *,
        previous: StoredVersion | None,
        method: Method,
    ) -> StoredVersion:
        if previous is not None:
            self._check_existing(previous)
        if resource is not None and self._confined(resource_type):
            # the id decides membership of a Patient in its own compartment: use the stored one
            self._check_body(resource_type, {**resource, "id": resource_id})
        return await self.tx.write_version(
            resource_type, resource_id, resource, previous=previous, method=method
        )

    async def serialize_on(self, key: str) -> None:
        await self.tx.serialize_on(key)

    async def find_ids(
        self, resource_type: ResourceType, criteria: Sequence[tuple[str, str]], limit: int
    ) -> list[ResourceId]:
        """A condition's matches, searched as the principal would search them."""
        return await self.search_ids(parse_criteria(resource_type, criteria), limit)

    async def search_ids(self, query: SearchQuery, limit: int) -> list[ResourceId]:
        """Matches of the principal's own search: its decision on every type pushed in."""
        decision = guard.require(self.principal, "search-type", query.resource_type)
        guard.constrain(query, decision, self.principal)
        return await self.tx.search_ids(query, limit)

    def _confined(self, resource_type: str) -> bool:
        return guard.confines(self.decision(resource_type))

    def _check_existing(self, stored: StoredVersion) -> None:
        if stored.deleted or stored.body is None or not self._confined(stored.resource_type):
            return  # a deletion holds nothing of anyone's; unconfined access checks nothing
        self._check_body(stored.resource_type, parse_object(stored.body, "stored resource"))

    def _check_body(self, resource_type: str, resource: Mapping[str, Any]) -> None:
        if not guard.writable(self.decision(resource_type), resource):
            raise Forbidden(OUTSIDE)
