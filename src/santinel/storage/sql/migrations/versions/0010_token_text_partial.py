"""`ix_search_token_text` holds only rows that have a text: a partial index
(`WHERE text IS NOT NULL`).

Only `:text` searches read that index, and they compare the text, so never a missing one. Most
token rows have none: every blind-index row (identifiers, telecom, names and addresses as keyed
digests, `storage.sql.search.blind`) and codings without a display. Each of them cost a page
write in the index at each commit for nothing (issue 8: a new Patient's index rows).

Revision ID: 0010_token_text_partial
Revises: 0009_search_lookup
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_token_text_partial"
down_revision = "0009_search_lookup"
branch_labels = None
depends_on = None

INDEX = "ix_search_token_text"
COLUMNS = ["res_type", "param", "text"]


def upgrade() -> None:
    has_text = sa.text("text IS NOT NULL")
    op.drop_index(INDEX, table_name="search_token")
    op.create_index(
        INDEX, "search_token", COLUMNS, sqlite_where=has_text, postgresql_where=has_text
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="search_token")
    op.create_index(INDEX, "search_token", COLUMNS)
