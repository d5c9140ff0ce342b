"""SQL storage of the authorization code flow: users, pending browser requests, grants, codes,
refresh tokens and EHR launch contexts. Opaque values are stored as digests only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from santinel.storage.auth_records import (
    AuthzRequestRecord,
    CodeRecord,
    GrantRecord,
    RefreshRecord,
    UserRecord,
)
from santinel.storage.sql.tables import (
    app_user,
    authz_request,
    grant_token,
    launch_context,
    oauth_code,
    oauth_grant,
    refresh_token,
    used_token,
)


class SqlGrantStore:
    def __init__(self, reader: AsyncEngine, writer: AsyncEngine) -> None:
        self.reader = reader
        self.writer = writer

    # -- users ----------------------------------------------------------------------------
    async def add_user(self, record: UserRecord) -> None:
        async with self.writer.begin() as connection:
            await connection.execute(insert(app_user).values(**record.__dict__))

    async def user_named(self, username: str) -> UserRecord | None:
        return await self._user(app_user.c.username == username)

    async def user(self, user_id: str) -> UserRecord | None:
        return await self._user(app_user.c.user_id == user_id)

    async def _user(self, where: Any) -> UserRecord | None:
        async with self.reader.connect() as connection:
            row = (await connection.execute(select(app_user).where(where))).first()
        return UserRecord(**row._asdict()) if row else None

    async def users(self) -> list[UserRecord]:
        async with self.reader.connect() as connection:
            rows = await connection.execute(select(app_user).order_by(app_user.c.created_us))
            return [UserRecord(**row._asdict()) for row in rows]

    async def set_user_disabled(self, username: str, disabled: bool) -> bool:
        async with self.writer.begin() as connection:
            result = await connection.execute(
                update(app_user).where(app_user.c.username == username).values(disabled=disabled)
            )
        return bool(result.rowcount)

    # -- pending authorization requests ---------------------------------------------------
    async def add_request(self, record: AuthzRequestRecord, now_us: int) -> None:
        async with self.writer.begin() as connection:
            await connection.execute(
                delete(authz_request).where(authz_request.c.expires_us < now_us)
            )
            await connection.execute(insert(authz_request).values(**record.__dict__))

    async def request(self, request_digest: str, now_us: int) -> AuthzRequestRecord | None:
        async with self.reader.connect() as connection:
            row = (
                await connection.execute(
                    select(authz_request).where(authz_request.c.request_digest == request_digest)
                )
            ).first()
        if row is None or row.expires_us < now_us:
            return None
        return AuthzRequestRecord(**row._asdict())

    async def update_request(self, request_digest: str, **values: Any) -> None:
        async with self.writer.begin() as connection:
            await connection.execute(
                update(authz_request)
                .where(authz_request.c.request_digest == request_digest)
                .values(**values)
            )

    async def delete_request(self, request_digest: str) -> bool:
        """Remove a request; False when it was already gone (a second submit of one form)."""
        async with self.writer.begin() as connection:
            result = await connection.execute(
                delete(authz_request).where(authz_request.c.request_digest == request_digest)
            )
        return bool(result.rowcount)

    # -- grants and codes -----------------------------------------------------------------
    async def add_grant(self, grant: GrantRecord, code: CodeRecord) -> None:
        async with self.writer.begin() as connection:
            await connection.execute(insert(oauth_grant).values(**grant.__dict__))
            await connection.execute(insert(oauth_code).values(**code.__dict__))

    async def grant(self, grant_id: str) -> GrantRecord | None:
        async with self.reader.connect() as connection:
            row = (
                await connection.execute(
                    select(oauth_grant).where(oauth_grant.c.grant_id == grant_id)
                )
            ).first()
        return GrantRecord(**row._asdict()) if row else None

    async def set_grant_context(self, grant_id: str, context: str) -> None:
        """Replace a grant's context JSON (the DPoP key its refresh tokens are bound to is
        added at the code exchange)."""
        async with self.writer.begin() as connection:
            await connection.execute(
                update(oauth_grant)
                .where(oauth_grant.c.grant_id == grant_id)
                .values(context=context)
            )

    async def use_code(self, code_digest: str) -> tuple[CodeRecord | None, bool]:
        """(the code, whether it had been used before). Marking it used is atomic, so of two
        concurrent exchanges exactly one gets `False`."""
        async with self.writer.begin() as connection:
            row = (
                await connection.execute(
                    select(oauth_code).where(oauth_code.c.code_digest == code_digest)
                )
            ).first()
            if row is None:
                return None, False
            result = await connection.execute(
                update(oauth_code)
                .where(oauth_code.c.code_digest == code_digest, oauth_code.c.used.is_(False))
                .values(used=True)
            )
        return CodeRecord(**row._asdict()), result.rowcount != 1

    # -- refresh tokens -------------------------------------------------------------------
    async def add_refresh(self, record: RefreshRecord) -> None:
        async with self.writer.begin() as connection:
            await connection.execute(insert(refresh_token).values(**record.__dict__))

    async def refresh(self, token_digest: str) -> RefreshRecord | None:
        async with self.reader.connect() as connection:
            row = (
                await connection.execute(
                    select(refresh_token).where(refresh_token.c.token_digest == token_digest)
                )
            ).first()
        return RefreshRecord(**row._asdict()) if row else None

    async def use_refresh(self, token_digest: str) -> tuple[RefreshRecord | None, bool]:
        """(the refresh token, whether it had been used before); rotation is atomic."""
        async with self.writer.begin() as connection:
            row = (
                await connection.execute(
                    select(refresh_token).where(refresh_token.c.token_digest == token_digest)
                )
            ).first()
            if row is None:
                return None, False
            result = await connection.execute(
                update(refresh_token)
                .where(
                    refresh_token.c.token_digest == token_digest, refresh_token.c.used.is_(False)
                )
                .values(used=True)
            )
        return RefreshRecord(**row._asdict()), result.rowcount != 1

    # -- access tokens of a grant, and revocation ------------------------------------------
    async def record_access_token(self, jti: str, grant_id: str, expires_us: int) -> None:
        async with self.writer.begin() as connection:
            await connection.execute(
                insert(grant_token).values(jti=jti, grant_id=grant_id, expires_us=expires_us)
            )

    async def revoke_grant(self, grant_id: str, now_us: int) -> None:
        """Revoke a grant with every refresh token and live access token issued under it."""
        async with self.writer.begin() as connection:
            await connection.execute(
                update(oauth_grant).where(oauth_grant.c.grant_id == grant_id).values(revoked=True)
            )
            await connection.execute(
                update(refresh_token).where(refresh_token.c.grant_id == grant_id).values(used=True)
            )
            await connection.execute(delete(grant_token).where(grant_token.c.expires_us < now_us))
            live = await connection.execute(
                select(grant_token.c.jti, grant_token.c.expires_us).where(
                    grant_token.c.grant_id == grant_id
                )
            )
            for jti, expires_us in live.all():
                await _revoke_jti(connection, jti, expires_us)

    async def revoke_access_token(self, jti: str, expires_us: int) -> None:
        async with self.writer.begin() as connection:
            await _revoke_jti(connection, jti, expires_us)

    # -- EHR launch contexts --------------------------------------------------------------
    async def add_launch(self, launch_digest: str, context: str, expires_us: int) -> None:
        async with self.writer.begin() as connection:
            await connection.execute(
                insert(launch_context).values(
                    launch_digest=launch_digest, context=context, expires_us=expires_us
                )
            )

    async def launch(self, launch_digest: str, now_us: int) -> str | None:
        async with self.reader.connect() as connection:
            row = (
                await connection.execute(
                    select(launch_context).where(launch_context.c.launch_digest == launch_digest)
                )
            ).first()
        return row.context if row is not None and row.expires_us >= now_us else None


async def _revoke_jti(connection: AsyncConnection, jti: str, expires_us: int) -> None:
    known = await connection.execute(
        select(used_token.c.token_id).where(
            used_token.c.kind == "revoked", used_token.c.token_id == jti
        )
    )
    if known.first() is None:
        await connection.execute(
            insert(used_token).values(kind="revoked", token_id=jti, expires_us=expires_us)
        )
