"""Gateway properties of a client: rate limit, quota, partner contract (allowed types and
purposes of use), and sender constraints (mTLS certificate thumbprint, DPoP).

Revision ID: 0006_gateway
Revises: 0005_authorization
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_gateway"
down_revision = "0005_authorization"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_client") as batch:
        batch.add_column(sa.Column("rate_limit", sa.String(64)))
        batch.add_column(sa.Column("quota", sa.String(64)))
        batch.add_column(sa.Column("allowed_types", sa.Text))
        batch.add_column(sa.Column("purposes", sa.Text))
        batch.add_column(sa.Column("cert_thumbprint", sa.String(64)))
        batch.add_column(
            sa.Column("require_dpop", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_client") as batch:
        for column in (
            "require_dpop",
            "cert_thumbprint",
            "purposes",
            "allowed_types",
            "quota",
            "rate_limit",
        ):
            batch.drop_column(column)
