"""Index rows looked up by resource AND parameter: `ix_<table>_resource` covers
(res_type, res_id, param) instead of (res_type, res_id).

Searches join index rows to each candidate resource (a second criterion, a sort key): with the
parameter in the index, both SQLite and PostgreSQL seek straight to the few rows of one resource
and one parameter, instead of choosing the (res_type, param, value) index and reading every row
of that parameter, whose number grows with the whole table (issue 3's scale benchmark,
`bench/search_scale.py`). Deleting a resource's rows still uses the index's first two columns.

Revision ID: 0009_search_lookup
Revises: 0008_encryption
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0009_search_lookup"
down_revision = "0008_encryption"
branch_labels = None
depends_on = None

INDEX_TABLES = (
    "search_string",
    "search_token",
    "search_date",
    "search_number",
    "search_quantity",
    "search_reference",
    "search_uri",
    "search_composite",
)


def upgrade() -> None:
    for name in INDEX_TABLES:
        op.drop_index(f"ix_{name}_resource", table_name=name)
        op.create_index(f"ix_{name}_resource", name, ["res_type", "res_id", "param"])


def downgrade() -> None:
    for name in INDEX_TABLES:
        op.drop_index(f"ix_{name}_resource", table_name=name)
        op.create_index(f"ix_{name}_resource", name, ["res_type", "res_id"])
