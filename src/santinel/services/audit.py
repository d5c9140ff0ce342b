"""The audit service: every request leaves AuditEvents in the hash-chained trail.

- Data changes: `on_commit` runs inside the write transaction (the repository calls it right
  before COMMIT) and adds one event per written version and patient, so the change and its
  record commit together or not at all.
- Everything else (reads, searches, denials, failures, sign-ins, tokens): `record` appends
  with group commit — concurrent requests share one transaction — and the caller awaits it
  before answering; when the trail cannot be written the request fails closed (503).
- Checkpoints: a background task signs the chain head with the audit key every
  `checkpoint_seconds` (see `santinel.audit.checkpoint`).
- Retention: with `retention_days` > 0, another task prunes older records hourly, verified
  first and leaving a signed anchor (`santinel.services.audit_verify.prune_before`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import socket
import time
from collections.abc import Iterable, Sequence

import orjson
from joserfc.jwk import ECKey

from santinel.audit import checkpoint
from santinel.audit.events import Actor, Happening, build, outcome_of
from santinel.audit.records import AuditRecord
from santinel.errors import FhirError
from santinel.fhir.compartment_membership import owners
from santinel.logging import get_logger
from santinel.services import audit_verify
from santinel.services.audit_context import OPERATOR_ACTOR, AuditScope, current
from santinel.services.ratelimit.events import SecurityEvent
from santinel.storage.base import StoredVersion
from santinel.storage.sql.audit_store import Appender, SqlAuditStore
from santinel.storage.sql.write_transaction import SqlWriteTransaction

log = get_logger("santinel.audit")
WRITE_SUBTYPES = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
READS = frozenset({"read", "vread"})
CHECKPOINT_SECONDS = 10.0
BATCHES_PER_LEASE = 16
Pending = tuple[list[AuditRecord], asyncio.Future[None]]  # records and who awaits them
RETENTION_FIRST_SECONDS = 60.0  # after start, then hourly
RETENTION_EVERY_SECONDS = 3600.0


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
        retention_days: float = 0,
        flush_reads: bool = False,
    ) -> None:
        self.store = store
        self.key = key
        self.observer = observer or f"santinel@{socket.gethostname()}"
        self.checkpoint_seconds = checkpoint_seconds
        self.retention_days = retention_days  # 0: keep every record
        # the events of reads, refusals and sign-ins: fsync'ed each, or durable from the next
        # flushed commit on (see `SqlAuditStore.write`); data changes always flush
        self.flush_reads = flush_reads
        self._pending: list[Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._retainer: asyncio.Task[None] | None = None

    # -- building records -----------------------------------------------------------------
    def event(self, actor: Actor, happening: Happening) -> AuditRecord:
        now_us = int(time.time() * 1_000_000)
        return build(event_id(now_us), now_us, actor, happening, self.observer)

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
            whose = each_patient(changed_patients(tx, stored, previous))
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

    async def security(
        self,
        subtype: str,
        status: int,
        *,
        client_id: str | None,
        address: str | None,
        user_ref: str | None = None,
        outcome_desc: str | None = None,
    ) -> None:
        """An authorization-server event (token, introspect, revoke, login, lockout)."""
        actor = Actor(client_id=client_id, client_address=address, user_ref=user_ref)
        happening = Happening(subtype, outcome_of(status), outcome_desc)
        await self.record([self.event(actor, happening)])

    async def lockout(self, event: SecurityEvent) -> None:
        """A brute-force lockout from traffic control (a BALP security alert)."""
        client = event.subject if event.subject_kind == "client" else None
        description = (
            f"{event.subject_kind} locked {event.locked_seconds}s after {event.failures} failures"
        )
        try:
            await self.security(
                "lockout", 429, client_id=client, address=event.address, outcome_desc=description
            )
        except AuditUnavailable:
            log.error("audit trail unavailable for a lockout", subject_kind=event.subject_kind)

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
        """Write what is pending, then what arrived meanwhile, with one appender while batches
        keep coming (at most `BATCHES_PER_LEASE`, so data changes waiting for the writer
        connection it may lease get their turn; on SQLite, unflushed batches need none:
        `SqlAuditStore.appender`)."""
        while self._pending:
            try:
                async with self.store.appender() as append:
                    for _ in range(BATCHES_PER_LEASE):
                        if not self._pending:
                            break
                        batch, self._pending = self._pending, []
                        if not await self._write(append, batch):
                            break  # the connection may be unusable: the next batch leases anew
            except Exception as exc:  # no connection to lease (or it failed to close)
                log.error("audit trail unavailable", error=type(exc).__name__)
                batch, self._pending = self._pending, []
                _settle(batch, unavailable())

    async def _write(self, append: Appender, batch: list[Pending]) -> bool:
        """Append one group commit and answer its waiters; False when it failed."""
        try:
            await append([r for records, _ in batch for r in records], self.flush_reads)
        except Exception as exc:
            log.error("audit trail write failed", error=type(exc).__name__)
            _settle(batch, unavailable())
            return False
        _settle(batch, None)
        return True

    # -- checkpoints ----------------------------------------------------------------------
    def start(self) -> None:
        if self._checkpointer is None:
            self._checkpointer = asyncio.create_task(self._checkpoint_loop())
        if self._retainer is None and self.retention_days > 0:
            self._retainer = asyncio.create_task(self._retention_loop())

    async def close(self) -> None:
        for task in (self._checkpointer, self._retainer, self._flusher):
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

    # -- retention ------------------------------------------------------------------------
    async def _retention_loop(self) -> None:
        await asyncio.sleep(RETENTION_FIRST_SECONDS)
        while True:
            try:
                await self.apply_retention()
            except Exception as exc:
                log.warning("audit retention failed", error=type(exc).__name__)
            await asyncio.sleep(RETENTION_EVERY_SECONDS)

    async def apply_retention(self, now_us: int | None = None) -> audit_verify.Pruned | None:
        """Prune records older than `retention_days` (verified first; a signed anchor keeps
        the rest verifiable). None when retention is off."""
        if self.retention_days <= 0:
            return None
        now_us = now_us if now_us is not None else int(time.time() * 1_000_000)
        cutoff_us = now_us - int(self.retention_days * 86_400 * 1_000_000)
        try:
            pruned = await audit_verify.prune_before(self.store, self.key, cutoff_us)
        except audit_verify.PruneRefused as refused:
            # never prune what does not verify: that would erase the evidence
            log.error(
                "audit trail does not verify: retention pruning refused",
                seq=refused.finding.seq,
                reason=refused.finding.reason,
            )
            raise
        if pruned.deleted:
            log.info("audit records pruned", deleted=pruned.deleted, through_seq=pruned.anchor_seq)
        return pruned


def event_id(now_us: int) -> str:
    """A unique AuditEvent id that sorts by time (the microseconds in hex, then 72 random
    bits): new ids land at the end of the unique index instead of on a random page of it, one
    page write per batch instead of one per record."""
    return f"{now_us:014x}{secrets.token_hex(9)}"


def _settle(batch: list[Pending], error: AuditUnavailable | None) -> None:
    for _, future in batch:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


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


def changed_patients(
    tx: SqlWriteTransaction, stored: StoredVersion, previous: StoredVersion | None
) -> set[str]:
    """Whose data a version written by `tx` is: as the write found it from the index values
    (no second evaluation of the compartment expressions), or from the body itself; a deletion
    leaves no body: the version it replaced says."""
    if stored.body is None:
        return patients_of([previous] if previous else [])
    known = tx.patients.get((stored.resource_type, stored.resource_id, stored.version))
    return set(known) if known is not None else patients_of([stored])


def patients_of(versions: Iterable[StoredVersion]) -> set[str]:
    """The patients whose compartment holds any of these versions."""
    found: set[str] = set()
    for stored in versions:
        if stored.body is None:
            continue
        if stored.resource_type == "Patient":
            found.add(stored.resource_id)
            continue
        found.update(body_owners(stored.body))
    return found


# Compartment membership evaluates the official SearchParameter expressions (FHIRPath): about
# 40 µs per resource, most of what auditing a search costs. It is a pure function of the body,
# so it is remembered by the body's digest (128-bit BLAKE2b: a different body never shares an
# entry), for the most recently seen bodies.
OWNERS_CACHE_SIZE = 50_000
_owners_by_digest: dict[bytes, frozenset[str]] = {}


def body_owners(body: bytes) -> frozenset[str]:
    digest = hashlib.blake2b(body, digest_size=16).digest()
    known = _owners_by_digest.get(digest)
    if known is not None:
        return known
    try:
        found = owners(orjson.loads(body))
    except (ValueError, TypeError):
        found = frozenset()
    if len(_owners_by_digest) >= OWNERS_CACHE_SIZE:
        del _owners_by_digest[next(iter(_owners_by_digest))]  # the oldest entry
    _owners_by_digest[digest] = found
    return found
