"""Verifying the audit trail, and pruning it so that what remains still verifies.

`verify` walks the chain from its anchor, streaming (never the whole log in memory), and stops
at the first record that is not what the server wrote:

- the anchor: genesis, or a pruning anchor signed by the audit key (a forged one fails);
- every record: in place (no gap, nothing out of order), its hash = link(previous hash, seq,
  columns, key id, stored body) (a modified body, search column or key id, a deleted, inserted
  or swapped record breaks it); no key is needed: the chain covers the bytes as stored, sealed
  since 0011 (`storage.sql.audit_sealing`), so it verifies after a patient's keys are erased;
- every body that can be read, its search columns agree with it (which pins down a column
  rewritten together with every following hash): the clear bodies written before 0011 always,
  the sealed ones with `open_bodies` and the data keys (`santinel audit verify` when the KEK is
  at hand), which also checks that each opens under its AAD (event id, seq, key id): a body
  moved from another record or given another key id, even rehashed, fails there. A clear body
  after the last record written before 0011 is refused. Bodies whose key was erased are
  counted, not failed: their columns are covered by the chain alone;
- every signed checkpoint stored in the database, and every checkpoint of an exported file:
  signed by the audit key, and the chain's hash at its seq equals the signed one (a chain
  rewritten AND rehashed by someone without the key fails here; records deleted at the end are
  found when a checkpoint names a seq past the last record).

What it cannot see, by construction: records deleted at the end of the chain after the last
checkpoint (at most `audit_checkpoint_seconds` of them when checkpoints are stored; when the
database owner also deletes the checkpoints, only an exported checkpoint file reveals it), and
a record appended at the end with a correctly computed hash before the next checkpoint (the
chain hash is public; the next checkpoint then signs it). Exported syslog/NDJSON copies (with
their seq and hash) and exported checkpoints are what make those visible.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from joserfc.jwk import ECKey

from santinel.audit import checkpoint as signing
from santinel.audit.chain import ChainedRow, link
from santinel.audit.checkpoint import Checkpoint
from santinel.audit.events import MalformedFacts, render, subtype_coding
from santinel.audit.records import GENESIS, AuditRecord
from santinel.crypto.envelope import Tampered
from santinel.fhir.dates import parse_period
from santinel.fhir.resource import instant
from santinel.storage.sql.audit_store import Anchor, SqlAuditStore

CLIENT_ROLE = "110153"
HUMAN_USER = "humanuser"
PATIENT_ROLE = "1"
DATA_ROLE = "4"


class AuditKeyNeeded(RuntimeError):
    """Signatures must be checked (an anchor, checkpoints) but no audit key was given."""


@dataclass(frozen=True)
class Finding:
    """The first record that does not verify (or the first of a range: a rewritten and
    rehashed stretch is only known to lie between two checkpoints)."""

    seq: int
    reason: str
    event_id: str | None = None
    through_seq: int | None = None

    def describe(self) -> str:
        where = (
            f"seq {self.seq}"
            if self.through_seq in (None, self.seq)
            else (f"seq {self.seq}..{self.through_seq}")
        )
        event = f" (event {self.event_id})" if self.event_id else ""
        return f"first bad record: {where}{event}: {self.reason}"


@dataclass
class Verification:
    anchor_seq: int = 0
    anchor_signed: bool = False  # a pruning anchor (not genesis) whose signature verified
    records: int = 0
    first_seq: int | None = None
    last_seq: int = 0
    checkpoints: int = 0  # stored checkpoints checked (signature and chain hash)
    external: int = 0  # checkpoints of exported files checked against the chain
    external_pruned: int = 0  # exported checkpoints of records pruned since (not failed)
    last_checkpoint_seq: int = 0  # the highest seq a verified checkpoint covers
    bodies: dict[str, int] = field(default_factory=dict)  # by `BodyCheck.state`
    failure: Finding | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def unsigned_tail(self) -> int:
        """Records after the last checkpoint: verified by the chain, not yet by a signature."""
        return max(0, self.last_seq - max(self.last_checkpoint_seq, self.anchor_seq))

    def summary(self) -> str:
        if self.failure is not None:
            return f"TAMPERED: {self.failure.describe()}"
        span = f"seq {self.first_seq}-{self.last_seq}" if self.records else "no records"
        after = (
            f", after a signed pruning anchor at seq {self.anchor_seq}"
            if self.anchor_signed
            else ""
        )
        external = ""
        if self.external or self.external_pruned:
            external = (
                f", {self.external} exported checkpoint(s) checked"
                f" ({self.external_pruned} of records pruned since)"
            )
        return (
            f"OK: {self.records} records ({span}{after}), last seq {self.last_seq}, "
            f"{self.checkpoints} signed checkpoint(s) checked{external}; "
            f"{self.unsigned_tail} record(s) after the last checkpoint{self._bodies()}"
        )

    def _bodies(self) -> str:
        said = [
            f"{self.bodies[state]} {text}"
            for state, text in BODY_STATES.items()
            if self.bodies.get(state)
        ]
        return f"; bodies: {', '.join(said)}" if said else ""


BODY_STATES = {
    "opened": "sealed, opened and matching their columns",
    "clear": "in clear (before 0011), matching their columns",
    "erased": "sealed with an erased key (their columns covered by the chain only)",
    "unopened": "sealed, not opened (no data keys)",
}


class Keys:
    """The audit key(s) signatures are checked with, chosen by the `kid` a signature names."""

    def __init__(self, keys: Iterable[ECKey]) -> None:
        self.by_kid = {key.thumbprint(): key for key in keys}

    def __bool__(self) -> bool:
        return bool(self.by_kid)

    def _candidates(self, signature: str) -> list[ECKey]:
        kid = signing.key_id(signature)
        if kid is not None and kid in self.by_kid:
            return [self.by_kid[kid]]
        return list(self.by_kid.values()) if kid is None else []

    def checkpoint(self, checkpoint: Checkpoint) -> bool:
        return any(signing.verify(k, checkpoint) for k in self._candidates(checkpoint.signature))

    def anchor(self, anchor: Anchor) -> bool:
        return any(
            signing.verify_anchor(k, anchor.seq, anchor.hash, anchor.signature)
            for k in self._candidates(anchor.signature)
        )


def is_genesis(anchor: Anchor) -> bool:
    return anchor.seq == 0 and anchor.hash == GENESIS


@dataclass
class _Expectation:
    checkpoint: Checkpoint
    source: str  # "stored" or "exported"


async def verify(
    store: SqlAuditStore,
    keys: Keys,
    external: Sequence[Checkpoint] = (),
    *,
    through_seq: int | None = None,
    progress: Callable[[int], None] | None = None,
    open_bodies: bool = False,
) -> Verification:
    """Walk the chain (up to `through_seq` when given) and check every checkpoint.

    `external` checkpoints must have been checked against `keys` already (`check_external`):
    they are the trusted side. `progress` is called with each verified record's seq.
    `open_bodies`: open the sealed bodies too (with the store's data keys, when it has them).
    Raises AuditKeyNeeded when a signature must be checked and `keys` is empty."""
    result = Verification()
    anchor = await store.anchor()
    result.anchor_seq = result.last_seq = anchor.seq
    if not is_genesis(anchor):
        if not keys:
            raise AuditKeyNeeded("the pruning anchor is signed: an audit key is needed")
        if not keys.anchor(anchor):
            result.failure = Finding(
                anchor.seq,
                "the pruning anchor (the last pruned record) is not signed by the audit key",
            )
            return result
        result.anchor_signed = True

    stored = await store.checkpoints()
    if stored and not keys:
        raise AuditKeyNeeded("signed checkpoints are stored: an audit key is needed")
    expected: dict[int, list[_Expectation]] = {}
    for known in stored:
        expected.setdefault(known.seq, []).append(_Expectation(known, "stored"))
    for given in external:
        if given.seq < anchor.seq:
            result.external_pruned += 1
        else:
            expected.setdefault(given.seq, []).append(_Expectation(given, "exported"))

    # checkpoints at the anchor's own seq: the hash of the last pruned record
    last_matched = anchor.seq
    for item in expected.pop(anchor.seq, []):
        problem = _check(keys, item, anchor.hash, anchor.seq, last_matched, result)
        if problem is not None:
            result.failure = problem
            return result
    for seq in [s for s in expected if s < anchor.seq]:
        del expected[seq]  # stored checkpoints of pruned records (pruning deletes them)

    previous = anchor.hash
    expected_seq = anchor.seq + 1
    before: tuple[str, ChainedRow] | None = None  # the hash before the previous row, that row
    async for row in store.rows(anchor.seq, through_seq=through_seq):
        if row.seq != expected_seq:
            missing = row.seq > expected_seq
            result.failure = Finding(
                expected_seq if missing else row.seq,
                f"record(s) missing before seq {row.seq}" if missing else "record out of order",
                None if missing else row.record.event_id,
            )
            return result
        computed = link(previous, row.seq, row.record)
        if computed != row.hash:
            result.failure = _mismatch(row, before)
            return result
        disagreement = await _body_problem(store, row, open_bodies, result)
        if disagreement is not None:
            result.failure = Finding(row.seq, disagreement, _event_id(row.record))
            return result
        for item in expected.pop(row.seq, []):
            problem = _check(keys, item, computed, row.seq, last_matched, result)
            if problem is not None:
                result.failure = problem
                return result
            last_matched = row.seq
        result.records += 1
        result.first_seq = result.first_seq or row.seq
        result.last_seq = row.seq
        before = (previous, row)
        previous, expected_seq = computed, row.seq + 1
        if progress is not None:
            progress(row.seq)

    # checkpoints past the last record: records were deleted at the end
    for seq in sorted(expected):
        if through_seq is not None and seq > through_seq:
            break
        for item in expected[seq]:
            if not _signed(keys, item):
                result.failure = _unsigned(item)
                return result
            result.failure = Finding(
                result.last_seq + 1,
                f"record(s) missing after seq {result.last_seq}: a checkpoint signed at "
                f"{instant(item.checkpoint.created_us)} ({item.source}) covers seq {seq}",
            )
            return result
    return result


async def _body_problem(
    store: SqlAuditStore, row: ChainedRow, open_bodies: bool, result: Verification
) -> str | None:
    """Why the record's body fails (does not open, or disagrees with its columns); None: fine
    or not readable here."""
    try:
        check = await store.check_body(row, open_sealed=open_bodies)
    except Tampered as exc:
        return f"the stored body fails its integrity check: {exc}"
    result.bodies[check.state] = result.bodies.get(check.state, 0) + 1
    if check.plaintext is None:
        return None
    try:
        event = render(check.plaintext)
    except MalformedFacts as exc:
        return str(exc)
    return column_disagreement(dataclasses.replace(row.record, body=event))


def _mismatch(row: ChainedRow, before: tuple[str, ChainedRow] | None) -> Finding:
    """A record whose hash does not link. When it links one place earlier (after the record
    before its predecessor), it was moved up by one: its predecessor was inserted."""
    if before is not None:
        hash_before, inserted = before
        if link(hash_before, row.seq - 1, row.record) == row.hash:
            return Finding(
                inserted.seq,
                f"a record was inserted here: the record now at seq {row.seq} was chained at "
                f"seq {inserted.seq}",
                _event_id(inserted.record),
            )
    return Finding(row.seq, "content or position altered (hash mismatch)", _event_id(row.record))


def _check(
    keys: Keys,
    item: _Expectation,
    chain_hash: str,
    seq: int,
    last_matched: int,
    result: Verification,
) -> Finding | None:
    if not _signed(keys, item):
        return _unsigned(item)
    if item.checkpoint.hash != chain_hash:
        return Finding(
            last_matched + 1,
            f"records rewritten and rehashed: the chain at seq {seq} differs from the "
            f"checkpoint signed at {instant(item.checkpoint.created_us)} ({item.source}); "
            f"the change lies after seq {last_matched}, the last verified point",
            through_seq=seq,
        )
    if item.source == "stored":
        result.checkpoints += 1
    else:
        result.external += 1
    result.last_checkpoint_seq = max(result.last_checkpoint_seq, seq)
    return None


def _signed(keys: Keys, item: _Expectation) -> bool:
    return item.source == "exported" or keys.checkpoint(item.checkpoint)


def _unsigned(item: _Expectation) -> Finding:
    return Finding(
        item.checkpoint.seq,
        f"the {item.source} checkpoint at seq {item.checkpoint.seq} is not signed by the "
        "audit key (forged or altered)",
    )


def check_external(keys: Keys, checkpoints: Sequence[Checkpoint]) -> list[Checkpoint]:
    """The exported checkpoints whose signature does NOT verify (a damaged or foreign file)."""
    return [c for c in checkpoints if not keys.checkpoint(c)]


def _event_id(record: AuditRecord) -> str | None:
    return record.event_id if isinstance(record.event_id, str) else None


# -- the search columns must say what the body says --------------------------------------
def column_disagreement(record: AuditRecord) -> str | None:
    """Why the record's search columns disagree with its AuditEvent body (None: they agree).

    Every column is derived from the body when the event is built (`audit.events.build`), so
    a disagreement means a column or the body was rewritten after the fact, together with the
    hashes from there on."""
    try:
        event = orjson.loads(record.body)
    except orjson.JSONDecodeError:
        return "the AuditEvent body is not JSON"
    if not isinstance(event, dict) or event.get("resourceType") != "AuditEvent":
        return "the body is not an AuditEvent"
    try:
        derived = _derived(event)
        recorded = parse_period(str(event["recorded"])).start
        recorded_differs = abs(recorded - int(record.recorded_us)) > 1
    except Exception:  # any shape the builder never writes
        return "the AuditEvent body is malformed"
    stored: dict[str, Any] = {
        "event_id": record.event_id,
        "patient": record.patient,
        # a client agent without a known client_id says "-" (a caller may claim "" or "-")
        "client_id": _client(record.client_id),
        "user_ref": record.user_ref,
        "action": record.action,
        "outcome": record.outcome,
        "subtype": subtype_coding(str(record.subtype)),  # the Coding: login → DCM 110122
        "entity": record.entity,
    }
    for name, value in stored.items():
        if derived[name] != value:
            return f"the {name} column disagrees with the AuditEvent body"
    if recorded_differs:
        return "the recorded_us column disagrees with the AuditEvent body"
    return None


def _derived(event: dict[str, Any]) -> dict[str, Any]:
    client_id = user_ref = None
    for agent in event.get("agent", []):
        code = agent["type"]["coding"][0]["code"]
        who = agent.get("who", {})
        if code == CLIENT_ROLE:
            client_id = _client(who["identifier"]["value"])
        elif code == HUMAN_USER:
            user_ref = (
                who["reference"] if "reference" in who else f"user:{who['identifier']['value']}"
            )
    patient = entity = None
    for item in event.get("entity", []):
        role = item.get("role", {}).get("code")
        if role == PATIENT_ROLE:
            patient = str(item["what"]["reference"]).removeprefix("Patient/")
        elif role == DATA_ROLE:
            entity = item["what"]["reference"]
    return {
        "event_id": event["id"],
        "patient": patient,
        "client_id": client_id,
        "user_ref": user_ref,
        "action": event["action"],
        "outcome": event["outcome"],
        "subtype": event["subtype"][0],
        "entity": entity,
    }


def _client(value: str | None) -> str | None:
    return None if value in (None, "", "-") else value


# -- pruning --------------------------------------------------------------------------------
class PruneRefused(RuntimeError):
    """The records to prune do not verify: pruning them would hide the tampering."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.describe())
        self.finding = finding


@dataclass(frozen=True)
class Pruned:
    deleted: int
    anchor_seq: int  # the last pruned record (0: nothing was old enough)


async def prune_before(store: SqlAuditStore, key: ECKey, cutoff_us: int) -> Pruned:
    """Delete the records recorded before `cutoff_us`, after verifying them, and leave a
    signed anchor (the last pruned record's seq and hash) the rest chains from."""
    target = await store.seq_before(cutoff_us)
    anchor = await store.anchor()
    if target is None or target[0] <= anchor.seq:
        return Pruned(0, anchor.seq)
    seq, _ = target
    checked = await verify(store, Keys([key]), through_seq=seq)
    if checked.failure is not None:
        raise PruneRefused(checked.failure)
    if checked.last_seq != seq:  # the records vanished meanwhile (another node pruned them)
        return Pruned(0, (await store.anchor()).seq)
    chain_hash = target[1]
    signature = signing.sign_anchor(key, seq, chain_hash, int(time.time() * 1_000_000))
    deleted = await store.prune(seq, Anchor(seq, chain_hash, signature))
    return Pruned(deleted, seq)
