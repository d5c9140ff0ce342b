"""BENCH ONLY: the Santinel app whose repository stores bodies as they are (a null cipher) and
indexes identifying values in clear — what encryption at rest costs is the difference.

`bench.encryption` runs it beside the normal server (`santinel serve`). It is the very app
`santinel serve` runs (`santinel.web.app.create_app`: same routes, policy, audit, database
engine); the only difference is the sealer its container's repository uses: `NullSealer`
instead of `services.encryption.open_sealer` (AES-256-GCM under per-patient keys, blind
indexes), and `NullAuditSealer` for its audit bodies. Nothing in `src/` can switch
encryption off: the replacement lives only here.

    python -m bench.null_cipher_app serve --port 8099 --data-dir DIR --http

Its data directory must be its own: it reads every body as plaintext.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.applications import Starlette

from bench.swapped_app import app_with, serve
from santinel.audit.records import AuditRecord
from santinel.crypto.blind_index import BlindTerms
from santinel.crypto.envelope import DataKey
from santinel.services.container import Container
from santinel.settings import Settings
from santinel.storage.sql.audit_sealing import SealingPlan
from santinel.storage.sql.repository import SqlRepository
from santinel.storage.sql.sealing import BodyRef, IntegrityFailure, Sealer, TxSealer


class NullTxSealer:
    async def seal(
        self, ref: BodyRef, owner: str, body: bytes, *, fresh: bool = False
    ) -> tuple[bytes, str | None]:
        return body, None

    async def open(self, ref: BodyRef, body: bytes | None, key_id: str | None) -> bytes | None:
        return body

    def take_key_rows(self) -> list[dict[str, Any]]:
        return []

    def committed(self) -> None:
        return None


class NullSealer:
    blind: BlindTerms | None = None  # identifying values indexed in clear
    plaintext_names = True

    def begin(self, connection: AsyncConnection, lock: bool) -> TxSealer:
        return NullTxSealer()

    async def open(self, ref: BodyRef, body: bytes | None, key_id: str | None) -> bytes | None:
        return body

    async def refresh(self) -> None:
        return None

    async def close(self) -> None:
        return None


class NullAuditSealer:
    """Audit bodies stored as built (no key id), read back as they are."""

    seals = False

    async def plan(
        self,
        records: Sequence[AuditRecord],
        *,
        connection: AsyncConnection | None = None,
        known: Mapping[str, DataKey] | None = None,
        excluded: Set[str] = frozenset(),
    ) -> SealingPlan:
        return SealingPlan(records, [None] * len(records))

    def committed(self, plan: SealingPlan) -> None:
        return None

    async def unseal(self, record: AuditRecord, seq: int) -> bytes | None:
        return record.body

    async def tampered(self, record: AuditRecord, seq: int, why: str) -> IntegrityFailure:
        return IntegrityFailure(why)


async def null_sealer(settings: Settings, repository: SqlRepository) -> Sealer:
    repository.audit.sealer = NullAuditSealer()  # `use_sealer` leaves it: not a KeyedSealer
    return NullSealer()


def null_cipher_app(settings: Settings) -> Starlette:
    """Santinel's own app, its container opened with the null sealer at startup."""
    return app_with(settings, _open_with_null_sealer)


async def _open_with_null_sealer(settings: Settings) -> Container:
    return await Container.open(settings, sealer=null_sealer)


def main(argv: Sequence[str] | None = None) -> None:
    """`santinel ARGS` (e.g. `serve --port 8099 --data-dir DIR`) serving `null_cipher_app`."""
    serve(null_cipher_app, "null-cipher", argv)


if __name__ == "__main__":
    main()
