"""Search result snapshots remember whose search they hold (paging links are not shareable).

Revision ID: 0004_snapshot_owner
Revises: 0003_oauth
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_snapshot_owner"
down_revision = "0003_oauth"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("search_snapshot") as batch:
        batch.add_column(sa.Column("owner", sa.String(200), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("search_snapshot") as batch:
        batch.drop_column("owner")
