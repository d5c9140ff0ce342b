"""The repository protocol, grouped by FHIR level (instance, type, system, history, transaction).

Writes happen inside `run_write(work)`: the backend opens one database transaction, calls `work`
with a `WriteTransaction`, commits, and re-runs `work` from the start when the database reports a
conflict between concurrent writers (so `work` must only touch the database through `tx`). Later
layers add their rows (search indexes, audit records) to that same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from santinel.fhir.search.query import Include, SearchQuery
from santinel.types import ResourceId, ResourceType, VersionId

T = TypeVar("T")
Method = Literal["POST", "PUT", "PATCH", "DELETE"]


@dataclass(frozen=True)
class StoredVersion:
    """One version of a resource as stored. `body` is the exact JSON served (None when deleted)."""

    resource_type: ResourceType
    resource_id: ResourceId
    version: VersionId
    last_updated: int  # microseconds since the epoch, UTC
    deleted: bool
    body: bytes | None
    method: Method = "PUT"
    sequence: int = 0  # position in the system-wide history; stable paging cursor


@dataclass(frozen=True)
class TypeFilter:
    """Versions of `resource_type` a history may show: of every resource of the type (`members`
    None) or only of the live resources matching `members` (e.g. a patient's compartment)."""

    resource_type: str
    members: SearchQuery | None = None


@dataclass(frozen=True)
class HistoryQuery:
    """R4 `http.html#history`: which versions, newest first, one page at a time."""

    resource_type: ResourceType | None = None
    resource_id: ResourceId | None = None
    since: int | None = None  # versions updated at or after this instant
    at_start: int | None = None  # versions current at some point in [at_start, at_end]
    at_end: int | None = None
    count: int = 20
    before_sequence: int | None = None  # keyset cursor: page of versions older than this
    after_sequence: int | None = None  # keyset cursor for the previous page
    visible: tuple[TypeFilter, ...] | None = None  # None: every type; else only these


@dataclass(frozen=True)
class HistoryPage:
    versions: Sequence[StoredVersion]
    has_older: bool
    has_newer: bool
    total: int | None


@dataclass(frozen=True)
class Snapshot:
    """A stored search result: the ordered `Type/id` references of every match."""

    id: str
    resource_type: str | None
    query: str  # the search's self URL
    total: int
    complete: bool  # False when the result was cut at the configured maximum
    ids: list[str]
    owner: str = ""  # the principal whose search this is; pages go to no one else


class WriteTransaction(Protocol):
    async def current(
        self, resource_type: ResourceType, resource_id: ResourceId
    ) -> StoredVersion | None:
        """The current version (deleted or not), locked against concurrent writers."""

    async def prefetch(self, refs: Sequence[tuple[ResourceType, ResourceId]]) -> None:
        """Read and lock the current versions of `refs` at once, before `current` is asked for
        each of them (a group write then pays one round trip instead of one per resource)."""

    async def write_version(
        self,
        resource_type: ResourceType,
        resource_id: ResourceId,
        resource: dict[str, Any] | None,
        *,
        previous: StoredVersion | None,
        method: Method,
    ) -> StoredVersion:
        """Store the version after `previous` (None: first version). `resource=None` deletes."""

    async def serialize_on(self, key: str) -> None:
        """Serialize concurrent transactions that check-then-act on the same condition `key`."""

    async def find_ids(
        self, resource_type: ResourceType, criteria: Sequence[tuple[str, str]], limit: int
    ) -> list[ResourceId]:
        """Ids of live resources matching search criteria, seen from inside this transaction."""

    async def search_ids(self, query: SearchQuery, limit: int) -> list[ResourceId]:
        """Ids of live resources matching a parsed (and access-constrained) search, seen from
        inside this transaction."""


@dataclass(frozen=True)
class AuditQuery:
    """Filters of an AuditEvent search (each None: no filter); newest first, keyset paged."""

    patient: str | None = None
    client_id: str | None = None
    user_ref: str | None = None
    outcome: str | None = None
    action: str | None = None
    subtype: str | None = None
    entity: str | None = None
    event_id: str | None = None
    since_us: int | None = None  # recorded ≥
    until_us: int | None = None  # recorded <
    before_seq: int | None = None  # the page after a previous one
    limit: int = 20


class FhirRepository(Protocol):
    # the audit trail (read side; writes are the audit service's)
    async def audit_events(self, query: AuditQuery) -> list[tuple[int, bytes]]: ...

    # instance level
    async def read(
        self, resource_type: ResourceType, resource_id: ResourceId
    ) -> StoredVersion | None: ...

    async def vread(
        self, resource_type: ResourceType, resource_id: ResourceId, version: VersionId
    ) -> StoredVersion | None: ...

    # writes (instance, type and, later, transaction bundles)
    async def run_write(self, work: Callable[[WriteTransaction], Awaitable[T]]) -> T: ...

    # type level
    async def find_ids(
        self, resource_type: ResourceType, criteria: Sequence[tuple[str, str]], limit: int
    ) -> list[ResourceId]: ...

    async def read_many(
        self, resource_type: ResourceType, resource_ids: Sequence[ResourceId]
    ) -> list[StoredVersion]: ...

    # search (the SearchQuery comes from santinel.fhir.search.query)
    async def search_ids(self, query: SearchQuery, limit: int) -> list[ResourceId]: ...

    async def count(self, query: SearchQuery) -> int: ...

    async def read_refs(self, refs: Sequence[tuple[str, str]]) -> list[StoredVersion]: ...

    async def include_refs(
        self, page: Sequence[tuple[str, str]], include: Include, reverse: bool, limit: int
    ) -> list[tuple[str, str]]: ...

    async def save_snapshot(
        self, resource_type: str | None, query: str, ids: list[str], complete: bool, owner: str
    ) -> str: ...

    async def load_snapshot(self, snapshot_id: str) -> Snapshot | None: ...

    # history (instance, type, system)
    async def history(self, query: HistoryQuery) -> HistoryPage: ...

    # operations
    async def is_empty(self) -> bool:
        """True when no resource was ever stored (a deleted resource still counts as stored)."""

    async def ready(self) -> tuple[bool, str]: ...

    async def close(self) -> None: ...
