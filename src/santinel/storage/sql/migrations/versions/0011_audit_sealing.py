"""Audit bodies sealed at rest: `audit_event.key_id`, the data key sealing each body
(`storage.sql.audit_sealing`), and `keystore_state.audit_legacy_seq`, the last record written
before this revision.

Records already stored keep their clear body (key id NULL), as they were chained: sealing them
here would change the bytes the hash chain covers, hence every later hash, and no signed
checkpoint (stored, or exported and kept elsewhere) would match any more; nor does a migration
hold the KEK. They stay readable and verifiable until retention prunes them. A clear body after
`audit_legacy_seq` was not written by the server: refused as tampered.

Downgrading drops the key ids: sealed bodies can no longer be opened (their hashes no longer
verify either), which is why it refuses once any body is sealed.

Revision ID: 0011_audit_sealing
Revises: 0010_token_text_partial
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_audit_sealing"
down_revision = "0010_token_text_partial"
branch_labels = None
depends_on = None

LEGACY_STATE = "audit_legacy_seq"


def upgrade() -> None:
    op.add_column("audit_event", sa.Column("key_id", sa.String(32), nullable=True))
    bind = op.get_bind()
    last = bind.execute(sa.text("SELECT COALESCE(MAX(seq), 0) FROM audit_event")).scalar()
    bind.execute(
        sa.text("INSERT INTO keystore_state (name, value) VALUES (:name, :value)"),
        {"name": LEGACY_STATE, "value": int(last or 0)},
    )


def downgrade() -> None:
    bind = op.get_bind()
    sealed = bind.execute(
        sa.text("SELECT 1 FROM audit_event WHERE key_id IS NOT NULL LIMIT 1")
    ).first()
    if sealed is not None:
        raise RuntimeError("audit records are sealed: downgrading would make them unreadable")
    bind.execute(sa.text("DELETE FROM keystore_state WHERE name = :name"), {"name": LEGACY_STATE})
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("key_id")
