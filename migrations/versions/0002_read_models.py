"""Read models: audit trail, patients, toxicities, responses, dose exposure, phase I, decisions.

Read models are caches rebuilt from the events: this revision creates them from the
definitions in ``ledger.projections.tables`` with the tracking table ``ledger_projections``.
A later change of a read model's columns is a revision that drops its tables, creates them
anew and deletes its tracking row, so the next catch-up rebuilds it from the first event.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

from ledger.projections.projector import create_indexes
from ledger.projections.tables import TABLES, read_model_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables = read_model_tables()
    connection = op.get_bind()
    tables.metadata.create_all(connection)
    create_indexes(connection, tables, [name for names in TABLES.values() for name in names])


def downgrade() -> None:
    read_model_tables().metadata.drop_all(op.get_bind())
