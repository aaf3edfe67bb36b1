"""The hash chain: a link per entry (``ledger_entries.chain_hash``, ``aggregate_hash``) and its head.

Existing entries are linked in commit order, as the ledger links new ones
(``ledger.integrity.chain``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.integrity.backfill import link_existing

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_entries") as table:
        table.add_column(sa.Column("chain_hash", sa.String(64), nullable=True))
        table.add_column(sa.Column("aggregate_hash", sa.String(64), nullable=True))
    op.create_table(
        "ledger_chain_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
    )
    link_existing(op.get_bind())


def downgrade() -> None:
    op.drop_table("ledger_chain_head")
    with op.batch_alter_table("ledger_entries") as table:
        table.drop_column("aggregate_hash")
        table.drop_column("chain_hash")
