"""Authorization code flow: users, pending authorization requests, grants, codes, refresh
tokens, EHR launch contexts and the access tokens issued under each grant.

Revision ID: 0005_authorization
Revises: 0004_snapshot_owner
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_authorization"
down_revision = "0004_snapshot_owner"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(200), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("fhir_user", sa.String(200)),
        sa.Column("totp_secret", sa.String(64)),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "authz_request",
        sa.Column("request_digest", sa.String(64), primary_key=True),
        sa.Column("csrf_digest", sa.String(64), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("user_id", sa.String(64)),
        sa.Column("patient", sa.String(64)),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_authz_request_expires", "authz_request", ["expires_us"])
    op.create_table(
        "oauth_grant",
        sa.Column("grant_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )
    op.create_table(
        "oauth_code",
        sa.Column("code_digest", sa.String(64), primary_key=True),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("nonce", sa.String(255)),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
        sa.Column("used", sa.Boolean, nullable=False),
    )
    op.create_table(
        "refresh_token",
        sa.Column("token_digest", sa.String(64), primary_key=True),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
        sa.Column("used", sa.Boolean, nullable=False),
    )
    op.create_index("ix_refresh_token_grant", "refresh_token", ["grant_id"])
    op.create_table(
        "grant_token",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_grant_token_grant", "grant_token", ["grant_id"])
    op.create_table(
        "launch_context",
        sa.Column("launch_digest", sa.String(64), primary_key=True),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "launch_context",
        "grant_token",
        "refresh_token",
        "oauth_code",
        "oauth_grant",
        "authz_request",
        "app_user",
    ):
        op.drop_table(table)
