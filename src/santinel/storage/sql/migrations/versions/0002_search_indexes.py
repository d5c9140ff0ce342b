"""Search index tables (one per parameter type) and result snapshots for stable paging.

Revision ID: 0002_search_indexes
Revises: 0001_core
Create Date: 2026-11-29
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002_search_indexes"
down_revision = "0001_core"
branch_labels = None
depends_on = None

BinaryText = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")

# table → (value columns, {index name: columns after res_type})
INDEX_TABLES: dict[str, tuple[list[Any], dict[str, list[str]]]] = {
    "search_string": (
        [
            sa.Column("normalized", BinaryText, nullable=False),
            sa.Column("exact", sa.Text, nullable=False),
        ],
        {"value": ["param", "normalized"]},
    ),
    "search_token": (
        [
            sa.Column("system", sa.Text),
            sa.Column("code", BinaryText),
            sa.Column("text", BinaryText),
        ],
        {"code": ["param", "code"], "text": ["param", "text"]},
    ),
    "search_date": (
        [
            sa.Column("start_us", sa.BigInteger, nullable=False),
            sa.Column("end_us", sa.BigInteger, nullable=False),
        ],
        {"start": ["param", "start_us"], "end": ["param", "end_us"]},
    ),
    "search_number": (
        [
            sa.Column("value", sa.Float, nullable=False),
            sa.Column("low", sa.Float, nullable=False),
            sa.Column("high", sa.Float, nullable=False),
        ],
        {"value": ["param", "value"]},
    ),
    "search_quantity": (
        [
            sa.Column("value", sa.Float, nullable=False),
            sa.Column("low", sa.Float, nullable=False),
            sa.Column("high", sa.Float, nullable=False),
            sa.Column("system", sa.Text),
            sa.Column("code", BinaryText),
            sa.Column("unit", sa.Text),
        ],
        {"value": ["param", "value"]},
    ),
    "search_reference": (
        [
            sa.Column("target_type", sa.String(64)),
            sa.Column("target_id", sa.String(64)),
            sa.Column("url", sa.Text, nullable=False),
        ],
        {"target": ["param", "target_id", "target_type"]},
    ),
    "search_uri": ([sa.Column("value", BinaryText, nullable=False)], {"value": ["param", "value"]}),
    "search_composite": (
        [
            column
            for n in (1, 2, 3)
            for column in (
                sa.Column(f"c{n}_system", sa.Text),
                sa.Column(f"c{n}_code", BinaryText),
                sa.Column(f"c{n}_value", sa.Float),
                sa.Column(f"c{n}_low", sa.Float),
                sa.Column(f"c{n}_high", sa.Float),
                sa.Column(f"c{n}_start", sa.BigInteger),
                sa.Column(f"c{n}_end", sa.BigInteger),
                sa.Column(f"c{n}_text", BinaryText),
            )
        ],
        {"first": ["param", "c1_code"]},
    ),
}


def upgrade() -> None:
    for name, (columns, indexes) in INDEX_TABLES.items():
        op.create_table(
            name,
            sa.Column("res_type", sa.String(64), nullable=False),
            sa.Column("res_id", sa.String(64), nullable=False),
            sa.Column("param", sa.String(100), nullable=False),
            *columns,
        )
        op.create_index(f"ix_{name}_resource", name, ["res_type", "res_id"])
        for index, cols in indexes.items():
            op.create_index(f"ix_{name}_{index}", name, ["res_type", *cols])
    op.create_index(
        "ix_search_reference_reverse",
        "search_reference",
        ["target_type", "target_id", "res_type", "param"],
    )
    op.create_table(
        "search_snapshot",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("res_type", sa.String(64)),
        sa.Column("query", sa.Text, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("ids", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_search_snapshot_created", "search_snapshot", ["created_us"])


def downgrade() -> None:
    op.drop_table("search_snapshot")
    for name in reversed(INDEX_TABLES):
        op.drop_table(name)
