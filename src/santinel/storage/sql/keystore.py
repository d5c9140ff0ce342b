"""Data keys in the database, wrapped by the KEK; unwrapped once and cached (bounded).

Owners: `Patient/<id>` (one compartment), `shared` (a resource in several patients'
compartments), `type:<Type>` (data of no patient, one key per resource type), `blind-index`
(the master key of the blind indexes) and `kek-check` (a random key whose only use is to tell,
at start, whether the KEK given is the one that wrapped this database's keys).

Other nodes learn of erasures and rotations through `keystore_state.epoch`: a node reads it at
most every `RECHECK_SECONDS` and drops its cached keys when it moved.

Besides the keys by id, the audit trail caches the key each owner's events are sealed with
(`newest_cached`): an audited read must not cost a lookup per event. It is dropped with the rest
(epoch moved, `forget`).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from santinel.crypto.blind_index import BlindIndex, BlindKeyring
from santinel.crypto.envelope import DataKey, Tampered, associated_data, new_key
from santinel.crypto.key_providers import KeyProvider, KeyProviderError, WrongKek
from santinel.fhir.resource import now_micros
from santinel.storage.sql.point_reads import Unavailable
from santinel.storage.sql.tables import data_key, keystore_state

CHECK_OWNER = "kek-check"
INDEX_OWNER = "blind-index"
PLAINTEXT_NAMES_STATE = "plaintext_names"  # keystore_state: 1 when names are indexed in clear
SHARED_OWNER = "shared"
RECHECK_SECONDS = 2.0
CAPACITY = 100_000  # cached unwrapped keys (~150 bytes each)


class WrongKeyEncryptionKey(RuntimeError):
    """The KEK given does not unwrap this database's keys: the server refuses to start."""


class KekRotated(RuntimeError):
    """The database's keys are wrapped by a newer KEK than this process holds."""


def wrap_context(key_id: str, owner: str) -> bytes:
    return associated_data("santinel data key", key_id, owner)


def patient_owner(patient_id: str) -> str:
    return f"Patient/{patient_id}"


class DataKeys:
    def __init__(
        self,
        provider: KeyProvider,
        reader: AsyncEngine,
        *,
        capacity: int = CAPACITY,
        recheck_seconds: float = RECHECK_SECONDS,
    ) -> None:
        self.provider = provider
        self.reader = reader
        self.capacity = capacity
        self.recheck_seconds = recheck_seconds
        self._cache: OrderedDict[str, DataKey] = OrderedDict()
        self._by_owner: OrderedDict[str, DataKey] = OrderedDict()  # the audit's, see above
        self._erased: set[str] = set()
        self._epoch: int | None = None
        self._kek_checked_epoch: int | None = -1  # the epoch at which the KEK was last checked
        self._epoch_read_at = 0.0
        self.blind: BlindKeyring | None = None
        self._blind_masters: dict[str, BlindIndex] = {}  # by key id: unwrapped once
        self.legacy_plaintext = False
        # the mode the name indexes were built in (1: in clear), as read at start; None: not
        # recorded yet (`services.container.name_indexes_match`)
        self.plaintext_names_recorded: int | None = None
        # SQLite's inline read-only connection (`point_reads`), for the writers' key lookups
        self.inline: Callable[[str, tuple[object, ...]], Any] | None = None

    @classmethod
    async def open(
        cls, provider: KeyProvider, reader: AsyncEngine, writer: AsyncEngine
    ) -> DataKeys:
        """Check the KEK against the database (creating its first keys when it has none) and
        load the blind-index key; `WrongKeyEncryptionKey` when the KEK is not the database's."""
        keys = cls(provider, reader)
        for _ in range(3):
            try:
                async with writer.begin() as connection:
                    await keys._bootstrap(connection)
                return keys
            except IntegrityError:  # another process created the first keys at the same time
                continue
        raise RuntimeError("could not create the database's first keys")

    async def _bootstrap(self, connection: AsyncConnection) -> None:
        check = await _owner_row(connection, CHECK_OWNER)
        if check is None:
            await self._create(connection, CHECK_OWNER, 1)
            await self._create(connection, INDEX_OWNER, 1)
        else:
            try:
                await self.provider.unwrap(check.wrapped, wrap_context(check.key_id, CHECK_OWNER))
            except WrongKek:
                raise WrongKeyEncryptionKey(
                    wrong_kek_message(self.provider, check.kek_id)
                ) from None
        await self._load_blind(connection)
        rows = (await connection.execute(select(keystore_state))).all()
        states: dict[str, int] = {str(name): int(value) for name, value in rows}
        self._epoch = int(states.get("epoch", 0))
        self._epoch_read_at = time.monotonic()
        self.legacy_plaintext = bool(states.get("legacy_plaintext", 0))
        self.plaintext_names_recorded = states.get(PLAINTEXT_NAMES_STATE)

    # -- reading --------------------------------------------------------------------------
    async def data_key(
        self, key_id: str, connection: AsyncConnection | None = None
    ) -> DataKey | None:
        """The unwrapped key `key_id`; None when it was erased; `Tampered` when no such key."""
        await self._check_epoch(connection)
        cached = self._cache.get(key_id)
        if cached is not None:
            self._cache.move_to_end(key_id)
            return cached
        if key_id in self._erased:
            return None
        query = select(data_key.c.owner, data_key.c.wrapped).where(data_key.c.key_id == key_id)
        if connection is not None:
            row = (await connection.execute(query)).first()
        else:
            async with self.reader.connect() as reading:
                row = (await reading.execute(query)).first()
        if row is None:
            raise Tampered(f"the data key {key_id[:32]} does not exist")
        if row.wrapped is None:
            self._erased.add(key_id)
            return None
        return (await self._unwrap(key_id, row.owner, row.wrapped)).key

    async def refresh(self) -> None:
        """Learn of other processes' erasures and rotations (at most every few seconds)."""
        await self._check_epoch(None)

    async def reload(self) -> None:
        """Learn of this process's own rotation at once."""
        self._epoch_read_at = -self.recheck_seconds
        self._epoch = None
        await self._check_epoch(None)

    async def _check_epoch(self, connection: AsyncConnection | None) -> None:
        now = time.monotonic()
        if now - self._epoch_read_at < self.recheck_seconds:
            return
        query = select(keystore_state.c.name, keystore_state.c.value)
        if connection is not None:
            rows = (await connection.execute(query)).all()
        else:
            async with self.reader.connect() as reading:
                rows = (await reading.execute(query)).all()
        states = {str(name): int(value) for name, value in rows}
        self._epoch_read_at = now
        if states.get("epoch") != self._epoch:
            self._cache.clear()
            self._by_owner.clear()
            self.legacy_plaintext = bool(states.get("legacy_plaintext", 0))
            if connection is not None:
                await self._load_blind(connection)
            else:
                async with self.reader.connect() as reading:
                    await self._load_blind(reading)
            # only now: a failed reload of the blind-index keys is tried again at the next check
            self._epoch = states.get("epoch")

    async def _load_blind(self, connection: AsyncConnection) -> None:
        """The blind-index keys as the database has them now: the active one first, then those
        a rotation is retiring (`santinel keys rotate-blind-index`)."""
        c = data_key.c
        query = (
            select(c.key_id, c.wrapped)
            .where(c.owner == INDEX_OWNER, c.wrapped.is_not(None), c.erased_us.is_(None))
            .order_by(c.generation.desc())
        )
        keys: list[tuple[str, BlindIndex]] = []
        for key_id, wrapped in (await connection.execute(query)).all():
            master = self._blind_masters.get(key_id)
            if master is None:
                unwrapped = await self._unwrap(key_id, INDEX_OWNER, wrapped)
                master = self._blind_masters[key_id] = BlindIndex(unwrapped.secret)
            keys.append((key_id, master))
        if not keys:
            raise WrongKeyEncryptionKey("the database has no blind-index key")
        if self.blind is None:
            self.blind = BlindKeyring(keys)
        else:
            self.blind.replace(keys)  # the object every sealer and search already holds
        for gone in set(self._blind_masters) - {key_id for key_id, _ in keys}:
            del self._blind_masters[gone]

    def forget(self, key_ids: set[str], *, erased: bool) -> None:
        """Drop keys from the cache (this node's erasure or rotation)."""
        for key_id in key_ids:
            self._cache.pop(key_id, None)
        for owner in [o for o, key in self._by_owner.items() if key.key_id in key_ids]:
            del self._by_owner[owner]
        if erased:
            self._erased |= key_ids

    async def _unwrap(self, key_id: str, owner: str, wrapped: bytes) -> _Unwrapped:
        context = wrap_context(key_id, owner)
        try:
            secret = await self.provider.unwrap(wrapped, context)
        except WrongKek:
            await self.provider.reload()  # rotated by another process since we started?
            try:
                secret = await self.provider.unwrap(wrapped, context)
            except WrongKek:
                raise Tampered(f"the data key {key_id} does not unwrap") from None
        unwrapped = _Unwrapped(DataKey(key_id, secret), secret)
        self.remember(unwrapped.key)
        return unwrapped

    def remember(self, key: DataKey) -> None:
        self._cache[key.key_id] = key
        self._cache.move_to_end(key.key_id)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)

    def newest_cached(self, owner: str) -> DataKey | None:
        """The key `owner`'s audit events were last sealed with on this node (see the module's
        docstring); the caller checks the epoch first (`refresh`)."""
        key = self._by_owner.get(owner)
        if key is not None:
            self._by_owner.move_to_end(owner)
        return key

    def remember_newest(self, owner: str, key: DataKey) -> None:
        self._by_owner[owner] = key
        self._by_owner.move_to_end(owner)
        while len(self._by_owner) > self.capacity:
            self._by_owner.popitem(last=False)

    async def newest(self, owner: str, connection: AsyncConnection | None = None) -> KeyRow | None:
        """`owner`'s newest key row (None: it never had a key), as `connection`'s transaction
        sees it (its own erasure included), or else as last committed."""
        row = self._active_inline(owner) if connection is None else None
        if row is None:
            if connection is not None:
                row = (await connection.execute(_newest_query(owner))).first()
            else:
                async with self.reader.connect() as reading:
                    row = (await reading.execute(_newest_query(owner))).first()
        if row is None or row == ():
            return None
        return KeyRow(row.key_id, row.wrapped, row.generation, row.retired_us, row.erased_us)

    async def unwrapped(self, row: KeyRow, owner: str) -> DataKey:
        """The key of a (not erased) row, from the cache or unwrapped by the KEK."""
        cached = self._cache.get(row.key_id)
        if cached is not None:
            return cached
        if row.wrapped is None:
            raise Tampered(f"the data key {row.key_id[:32]} was erased")
        return (await self._unwrap(row.key_id, owner, row.wrapped)).key

    # -- writing --------------------------------------------------------------------------
    async def active(self, connection: AsyncConnection, owner: str, lock: bool) -> DataKey | int:
        """The key new data of `owner` is sealed with (row-locked against a concurrent erasure
        where the database has row locks), or, when it has none, the generation of the newest
        key it had (0: none), for `create`. One statement."""
        row = self._active_inline(owner) if not lock else None
        if row is None:
            query = _newest_query(owner)
            if lock:
                query = query.with_for_update(read=True)
            row = (await connection.execute(query)).first()
        if row is None or row == ():
            return 0
        if row.retired_us is not None or row.erased_us is not None:
            return int(row.generation)
        cached = self._cache.get(row.key_id)
        if cached is not None:
            return cached
        return (await self._unwrap(row.key_id, owner, row.wrapped)).key

    def _active_inline(self, owner: str) -> Any:
        """SQLite: the same lookup on the inline read-only connection (no thread hops). The
        writer holds the database's write lock, so no erasure or rotation can commit meanwhile
        and the last committed state is the one that counts; `()` when there is no key."""
        if self.inline is None:
            return None
        try:
            found = self.inline(ACTIVE_SQL, (owner,))
        except Unavailable:
            return None
        if found is None:
            return ()
        return KeyRow(*found)

    async def create(
        self, connection: AsyncConnection, owner: str, after: int
    ) -> tuple[DataKey, dict[str, Any]]:
        """A new key for `owner` (generation `after + 1`) and its `data_key` row, which the
        caller inserts in its transaction (with that transaction's other rows: one round trip
        less per new patient); cached only once that transaction commits (`remember`)."""
        await self._require_current_kek(connection)
        created, row = await self._new(owner, after + 1)
        return created.key, row

    async def create_internal(
        self, connection: AsyncConnection, owner: str, generation: int
    ) -> None:
        """A new key of an internal owner (the next blind-index key), in `connection`'s
        transaction; loaded after it commits (`reload`)."""
        await self._require_current_kek(connection)
        await self._create(connection, owner, generation, cache=False)

    async def _create(
        self, connection: AsyncConnection, owner: str, generation: int, *, cache: bool = True
    ) -> _Unwrapped:
        created, row = await self._new(owner, generation)
        await connection.execute(insert(data_key), row)
        if cache:
            self.remember(created.key)
        return created

    async def _new(self, owner: str, generation: int) -> tuple[_Unwrapped, dict[str, Any]]:
        key_id = new_key_id()
        secret = new_key()
        wrapped = await self.provider.wrap(secret, wrap_context(key_id, owner))
        row = {
            "key_id": key_id,
            "owner": owner,
            "generation": generation,
            "wrapped": wrapped,
            "kek_id": self.provider.kek_id,
            "created_us": now_micros(),
            "retired_us": None,
            "erased_us": None,
        }
        return _Unwrapped(DataKey(key_id, secret), secret), row

    async def _require_current_kek(self, connection: AsyncConnection) -> None:
        """New keys must be wrapped by the database's current KEK (after a `rotate-kek` by
        another process, read the key source again). Checked again after each epoch change
        (a rotation moves the epoch)."""
        await self._check_epoch(connection)
        if self._kek_checked_epoch == self._epoch:
            return
        query = select(data_key.c.kek_id).where(data_key.c.owner == CHECK_OWNER)
        current = (await connection.execute(query)).scalar()
        if current is None or current == self.provider.kek_id:
            self._kek_checked_epoch = self._epoch
            return
        with contextlib.suppress(KeyProviderError):
            await self.provider.reload()
        if current != self.provider.kek_id:
            raise KekRotated(
                f"the database's keys are wrapped by {current}, this process holds "
                f"{self.provider.kek_id}: restart it with the new key-encryption key"
            )


ACTIVE_SQL = (
    "SELECT key_id, wrapped, generation, retired_us, erased_us FROM data_key "
    "WHERE owner = ? ORDER BY generation DESC LIMIT 1"
)


def _newest_query(owner: str) -> Select[Any]:
    c = data_key.c
    return (
        select(c.key_id, c.wrapped, c.generation, c.retired_us, c.erased_us)
        .where(c.owner == owner)
        .order_by(c.generation.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class KeyRow:
    key_id: str
    wrapped: bytes | None
    generation: int
    retired_us: int | None
    erased_us: int | None


class _Unwrapped:
    __slots__ = ("key", "secret")

    def __init__(self, key: DataKey, secret: bytes) -> None:
        self.key, self.secret = key, secret


async def _owner_row(connection: AsyncConnection, owner: str) -> Any:
    c = data_key.c
    query = select(c.key_id, c.wrapped, c.kek_id).where(c.owner == owner, c.erased_us.is_(None))
    return (await connection.execute(query.order_by(c.generation.desc()).limit(1))).first()


async def bump_epoch(connection: AsyncConnection) -> None:
    """Tell every node to drop its cached keys (after an erasure or a rotation)."""
    await connection.execute(
        update(keystore_state)
        .where(keystore_state.c.name == "epoch")
        .values(value=keystore_state.c.value + 1)
    )


def wrong_kek_message(provider: KeyProvider, expected: str) -> str:
    return (
        f"The key-encryption key from {provider.description} ({provider.kek_id}) does not "
        f"open this database's keys, which were wrapped with {expected}. Start the server with "
        "the key the database was created with (settings key_provider, key_file, kek, vault_*); "
        "without it the stored data cannot be read."
    )


class KeyedSealerRequired(RuntimeError):
    def __init__(self) -> None:
        super().__init__("key administration needs a repository opened with its data keys")


def new_key_id() -> str:
    """32 hex digits: the creation time (µs, already in `created_us`) then 72 random bits. In
    creation order, a new key's entries land at the end of the key-id indexes (`data_key`,
    `resource`, `resource_history`) instead of at a random page each: fewer page writes for each
    new patient."""
    return f"{now_micros():014x}{secrets.token_hex(9)}"
