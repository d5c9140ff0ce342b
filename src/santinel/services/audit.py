"""The audit service: every request leaves AuditEvents in the hash-chained trail.

- Data changes: `on_commit` runs inside the write transaction (the repository calls it right
  before COMMIT) and adds one event per written version and patient, so the change and its
  record commit together or not at all.
- Everything else (reads, searches, denials, failures, sign-ins, tokens): `record` appends
  with group commit — concurrent requests share one transaction — and the caller awaits it
  before answering; when the trail cannot be written the request fails closed (503).
- Checkpoints: a background task signs the chain head with the audit key every
  `checkpoint_seconds` (see `santinel.audit.checkpoint`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import Iterable, Sequence

import orjson
from joserfc.jwk import ECKey

from santinel.audit import checkpoint
from santinel.audit.events import Actor, Happening, build, outcome_of
from santinel.audit.records import AuditRecord
from santinel.errors import FhirError
from santinel.fhir.compartment_membership import owners
from santinel.logging import get_logger
from santinel.services.audit_context import OPERATOR_ACTOR, AuditScope, current
from santinel.storage.base import StoredVersion
from santinel.storage.sql.audit_store import SqlAuditStore
from santinel.storage.sql.repository import SqlWriteTransaction

log = get_logger("santinel.audit")
WRITE_SUBTYPES = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
READS = frozenset({"read", "vread"})
CHECKPOINT_SECONDS = 10.0


class AuditUnavailable(FhirError):
    """The audit trail could not be written: the request is refused rather than unaudited."""

    status = 503
    code = "transient"


class AuditService:
    def __init__(
        self,
        store: SqlAuditStore,
        key: ECKey,
        *,
        observer: str | None = None,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
    ) -> None:
        self.store = store
        self.key = key
        self.observer = observer or f"santinel@{socket.gethostname()}"
        self.checkpoint_seconds = checkpoint_seconds
        self._pending: list[tuple[list[AuditRecord], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._checkpointer: asyncio.Task[None] | None = None

    # -- building records -----------------------------------------------------------------
    def event(self, actor: Actor, happening: Happening) -> AuditRecord:
        now_us = int(time.time() * 1_000_000)
        return build(uuid.uuid4().hex, now_us, actor, happening, self.observer)

    def _events(
        self, scope: AuditScope, subtype: str, patients: Sequence[str | None], **fields: object
    ) -> list[AuditRecord]:
        happening_fields = {"request_id": scope.request_id, **fields}
        return [
            self.event(
                scope_actor(scope),
                Happening(subtype, patient=patient, **happening_fields),  # type: ignore[arg-type]
            )
            for patient in patients
        ]

    # -- data changes: inside the write transaction ---------------------------------------
    async def on_commit(self, tx: SqlWriteTransaction) -> None:
        scope = current() or AuditScope(OPERATOR_ACTOR)
        records: list[AuditRecord] = []
        for stored, previous in tx.written:
            # a deletion leaves no body: whose data it was, the replaced version says
            source = stored if stored.body is not None else previous
            whose = each_patient(patients_of([source] if source else []))
            entity = f"{stored.resource_type}/{stored.resource_id}/_history/{stored.version}"
            records += self._events(scope, WRITE_SUBTYPES[stored.method], whose, entity=entity)
        tx.add_audit(records)
        scope.committed = True

    # -- the request's outcome --------------------------------------------------------------
    async def request_done(
        self, scope: AuditScope, status: int, outcome_desc: str | None = None
    ) -> None:
        """Record a finished request unless its data change already did; fail closed."""
        subtype = scope.interaction or "unknown"
        if status < 400 and scope.committed and not scope.served:
            return
        if status >= 400 or not scope.served:
            fields = {"outcome": outcome_of(status), "outcome_desc": outcome_desc}
            records = self._events(scope, subtype, [None], query=scope.query, **fields)
        elif subtype in READS:
            stored = scope.served[0]
            entity = f"{stored.resource_type}/{stored.resource_id}/_history/{stored.version}"
            whose = each_patient(patients_of(scope.served))
            records = self._events(scope, subtype, whose, entity=entity)
        else:  # searches, history, batches: one event per patient whose data was returned
            whose = each_patient(patients_of(scope.served))
            records = self._events(scope, subtype, whose, query=scope.query)
        await self.record(records)

    async def record(self, records: Sequence[AuditRecord]) -> None:
        """Append with group commit; raises AuditUnavailable when the trail cannot be written."""
        if not records:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((list(records), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self.store.write([r for records, _ in batch for r in records])
            except Exception as exc:
                log.error("audit trail write failed", error=type(exc).__name__)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(unavailable())
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    # -- checkpoints ----------------------------------------------------------------------
    def start(self) -> None:
        if self._checkpointer is None:
            self._checkpointer = asyncio.create_task(self._checkpoint_loop())

    async def close(self) -> None:
        for task in (self._checkpointer, self._flusher):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.checkpoint_seconds)
            try:
                await self.checkpoint()
            except Exception as exc:
                log.warning("audit checkpoint failed", error=type(exc).__name__)

    async def checkpoint(self) -> checkpoint.Checkpoint | None:
        """Sign the chain head (nothing when it is already signed)."""
        seq, head_hash = await self.store.head()
        if seq == 0:
            return None
        signed = checkpoint.sign(self.key, seq, head_hash, int(time.time() * 1_000_000))
        await self.store.add_checkpoint(signed)
        return signed


def unavailable() -> AuditUnavailable:
    return AuditUnavailable(
        "The audit trail is unavailable, so the request was not served; try again later.",
        headers={"Retry-After": "5"},
    )


def scope_actor(scope: AuditScope) -> Actor:
    if scope.policy is None or scope.actor.policy is not None:
        return scope.actor
    return Actor(
        scope.actor.client_id,
        scope.actor.client_address,
        scope.actor.user_ref,
        scope.actor.purpose_of_use,
        scope.policy,
    )


def each_patient(patients: set[str]) -> list[str | None]:
    """One event per patient, or one event about no patient."""
    return [*sorted(patients)] if patients else [None]


def patients_of(versions: Iterable[StoredVersion]) -> set[str]:
    """The patients whose compartment holds any of these versions."""
    found: set[str] = set()
    for stored in versions:
        if stored.body is None:
            continue
        if stored.resource_type == "Patient":
            found.add(stored.resource_id)
            continue
        with contextlib.suppress(ValueError, TypeError):
            found.update(owners(orjson.loads(stored.body)))
    return found
