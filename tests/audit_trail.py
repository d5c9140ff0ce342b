"""The audit trail a server stored, read back as an operator can: the chain as stored (it
verifies without any key) and the AuditEvents opened with the data keys (the server's KEK)."""

from __future__ import annotations

import asyncio

from santinel.audit.chain import ChainedRow, first_break
from santinel.services.key_admin import opened_repository
from santinel.settings import Settings


def stored_rows(settings: Settings) -> list[ChainedRow]:
    """Every record as stored (bodies sealed), after checking that the chain verifies."""

    async def read() -> list[ChainedRow]:
        async with opened_repository(settings) as repository:
            anchor = await repository.audit.anchor()
            rows = [row async for row in repository.audit.rows(anchor.seq)]
        assert first_break(rows, anchor.seq, anchor.hash) is None
        return rows

    return asyncio.run(read())


def opened_rows(settings: Settings) -> list[ChainedRow]:
    """Every record with its AuditEvent JSON (an erased patient's: the erased view), after
    checking that the chain verifies."""
    stored_rows(settings)

    async def read() -> list[ChainedRow]:
        async with opened_repository(settings) as repository:
            return [row async for row in repository.audit.events()]

    return asyncio.run(read())
