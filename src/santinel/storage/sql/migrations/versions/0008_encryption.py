"""Encryption at rest: data keys, the key id of every stored body, legal holds (blind indexes
are rows of `search_token`, no new table).

Rows written before this revision stay readable as they are (`legacy_plaintext` is set when the
database already held resources) until `santinel keys rotate-dek` encrypts them and rebuilds
their index rows; once none is left, a body without a key id is refused as tampered.

Revision ID: 0008_encryption
Revises: 0007_audit
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_encryption"
down_revision = "0007_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table, index in (("resource", "ix_resource_key"), ("resource_history", "ix_history_key")):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("key_id", sa.String(32), nullable=True))
        op.create_index(index, table, ["key_id"])
    op.create_table(
        "data_key",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("wrapped", sa.LargeBinary),
        sa.Column("kek_id", sa.String(200), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("retired_us", sa.BigInteger),
        sa.Column("erased_us", sa.BigInteger),
        sa.UniqueConstraint("owner", "generation", name="uq_data_key_owner_generation"),
    )
    state = op.create_table(
        "keystore_state",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "legal_hold",
        sa.Column("patient_id", sa.String(64), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("placed_us", sa.BigInteger, nullable=False),
    )
    existing = op.get_bind().execute(sa.text("SELECT 1 FROM resource LIMIT 1")).first()
    op.bulk_insert(
        state,
        [{"name": "epoch", "value": 0}, {"name": "legacy_plaintext", "value": int(bool(existing))}],
    )


def downgrade() -> None:
    op.drop_table("legal_hold")
    op.drop_table("keystore_state")
    op.drop_table("data_key")
    for table, index in (("resource_history", "ix_history_key"), ("resource", "ix_resource_key")):
        op.drop_index(index, table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("key_id")
