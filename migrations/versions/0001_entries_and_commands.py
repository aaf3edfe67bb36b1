"""The entry index and the command ids.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("position", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("entry_id", sa.String(64), nullable=False, unique=True),
        sa.Column("aggregate_id", sa.String(36), nullable=False),
        sa.Column("aggregate_version", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(64)),
        sa.Column("stratum", sa.String(64)),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("command_id", sa.String(128)),
        sa.Column("amends_entry_id", sa.String(64)),
    )
    op.create_index("ix_ledger_entries_aggregate_id", "ledger_entries", ["aggregate_id"])
    op.create_index("ix_ledger_entries_patient_id", "ledger_entries", ["patient_id"])
    op.create_index("ix_ledger_entries_stratum", "ledger_entries", ["stratum"])
    op.create_index("ix_ledger_entries_kind", "ledger_entries", ["kind"])
    op.create_index("ix_ledger_entries_recorded_at", "ledger_entries", ["recorded_at"])
    op.create_table(
        "ledger_commands",
        sa.Column("command_id", sa.String(128), primary_key=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entry_ids", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_commands")
    op.drop_table("ledger_entries")
