"""SQL storage of the authorization server: clients, signing keys, one-time token ids."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from santinel.storage.auth_records import ClientRecord, KeyRecord
from santinel.storage.sql.tables import oauth_client, signing_key, used_token


class SqlAuthStore:
    def __init__(self, reader: AsyncEngine, writer: AsyncEngine) -> None:
        self.reader = reader
        self.writer = writer

    # -- clients --------------------------------------------------------------------------
    async def add_client(self, record: ClientRecord) -> None:
        values = {
            **record.__dict__,
            "redirect_uris": orjson.dumps(list(record.redirect_uris)).decode(),
        }
        async with self.writer.begin() as connection:
            await connection.execute(insert(oauth_client).values(**values))

    async def client(self, client_id: str) -> ClientRecord | None:
        async with self.reader.connect() as connection:
            row = (
                await connection.execute(
                    select(oauth_client).where(oauth_client.c.client_id == client_id)
                )
            ).first()
        return _client(row) if row else None

    async def clients(self) -> list[ClientRecord]:
        async with self.reader.connect() as connection:
            rows = await connection.execute(
                select(oauth_client).order_by(oauth_client.c.created_us)
            )
            return [_client(row) for row in rows]

    async def set_client_disabled(self, client_id: str, disabled: bool) -> bool:
        async with self.writer.begin() as connection:
            result = await connection.execute(
                update(oauth_client)
                .where(oauth_client.c.client_id == client_id)
                .values(disabled=disabled)
            )
        return bool(result.rowcount)

    # -- signing keys ---------------------------------------------------------------------
    async def keys(self) -> list[KeyRecord]:
        async with self.reader.connect() as connection:
            rows = await connection.execute(select(signing_key).order_by(signing_key.c.created_us))
            return [
                KeyRecord(r.kid, r.alg, r.private_pem, r.created_us, r.retire_after_us)
                for r in rows
            ]

    async def add_key(self, record: KeyRecord, retire_others_after_us: int | None) -> None:
        """Add a key; the previous active keys of its family (ECDSA access-token keys, RSA
        id_token keys) stop signing and stay verifiable until then."""
        async with self.writer.begin() as connection:
            if retire_others_after_us is not None:
                await connection.execute(
                    update(signing_key)
                    .where(
                        signing_key.c.retire_after_us.is_(None),
                        signing_key.c.alg.startswith(record.alg[:2]),
                    )
                    .values(retire_after_us=retire_others_after_us)
                )
            await connection.execute(insert(signing_key).values(**record.__dict__))

    # -- one-time ids (client assertion replay cache, revoked tokens) ---------------------
    async def use_once(self, kind: str, token_id: str, expires_us: int, now_us: int) -> bool:
        """Record `token_id`; False when it was already recorded (a replay)."""
        try:
            async with self.writer.begin() as connection:
                await connection.execute(delete(used_token).where(used_token.c.expires_us < now_us))
                await connection.execute(
                    insert(used_token).values(kind=kind, token_id=token_id, expires_us=expires_us)
                )
        except IntegrityError:
            return False
        return True

    async def is_recorded(self, kind: str, token_id: str) -> bool:
        async with self.reader.connect() as connection:
            row = (
                await connection.execute(
                    select(used_token.c.token_id).where(
                        used_token.c.kind == kind, used_token.c.token_id == token_id
                    )
                )
            ).first()
        return row is not None


def _client(row: Any) -> ClientRecord:
    return ClientRecord(
        client_id=row.client_id,
        name=row.name,
        tier=row.tier,
        scope=row.scope,
        auth_method=row.auth_method,
        secret_digest=row.secret_digest,
        jwks=row.jwks,
        jwks_url=row.jwks_url,
        redirect_uris=tuple(orjson.loads(row.redirect_uris)),
        disabled=bool(row.disabled),
        created_us=row.created_us,
        rate_limit=row.rate_limit,
        quota=row.quota,
        allowed_types=row.allowed_types,
        purposes=row.purposes,
        cert_thumbprint=row.cert_thumbprint,
        require_dpop=bool(row.require_dpop),
    )
