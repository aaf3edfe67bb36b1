"""Users: the salted hash of each user's current credential.

Users, their roles and every change to them are events (``ledger.domain.access``); this
table holds only what must be replaceable and must never be an event: the argon2id hash of
the credential in force.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.persistence import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_credentials",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("secret_hash", sa.Text(), nullable=False),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_credentials")
