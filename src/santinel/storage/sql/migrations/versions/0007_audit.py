"""The audit trail: hash-chained AuditEvents, signed checkpoints, the pruning anchor.

Revision ID: 0007_audit
Revises: 0006_gateway
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_audit"
down_revision = "0006_gateway"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("recorded_us", sa.BigInteger, nullable=False),
        sa.Column("patient", sa.String(64)),
        sa.Column("client_id", sa.String(64)),
        sa.Column("user_ref", sa.String(200)),
        sa.Column("action", sa.String(1), nullable=False),
        sa.Column("outcome", sa.String(2), nullable=False),
        sa.Column("subtype", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(300)),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_event_patient", "audit_event", ["patient", "seq"])
    op.create_index("ix_audit_event_client", "audit_event", ["client_id", "seq"])
    op.create_index("ix_audit_event_recorded", "audit_event", ["recorded_us"])
    op.create_table(
        "audit_checkpoint",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
    )
    op.create_table(
        "audit_anchor",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_anchor")
    op.drop_table("audit_checkpoint")
    op.drop_table("audit_event")
