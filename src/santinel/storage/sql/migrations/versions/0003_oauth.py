"""OAuth 2 / SMART authorization server: clients, signing keys, one-time token ids.

Revision ID: 0003_oauth
Revises: 0002_search_indexes
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_oauth"
down_revision = "0002_search_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_client",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("auth_method", sa.String(32), nullable=False),
        sa.Column("secret_digest", sa.String(64)),
        sa.Column("jwks", sa.Text),
        sa.Column("jwks_url", sa.Text),
        sa.Column("redirect_uris", sa.Text, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "signing_key",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("private_pem", sa.LargeBinary, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("retire_after_us", sa.BigInteger),
    )
    op.create_table(
        "used_token",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("token_id", sa.String(200), primary_key=True),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_used_token_expires", "used_token", ["expires_us"])


def downgrade() -> None:
    op.drop_table("used_token")
    op.drop_table("signing_key")
    op.drop_table("oauth_client")
