"""The scheduler: APScheduler's job table; the patients' read models gain the loss-to-follow-up date.

As revision 0002 says, a read model whose columns change is dropped, created anew from
``ledger.projections.tables`` and its tracking row deleted: the next catch-up (``ledger
migrate`` runs one) rebuilds it from the first event.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.projections.projector import create_indexes
from ledger.projections.tables import TABLES, read_model_tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JOBS = "ledger_scheduler_jobs"


def upgrade() -> None:
    # the layout of APScheduler 3's SQLAlchemyJobStore (apscheduler.jobstores.sqlalchemy), under the ledger's name
    op.create_table(
        JOBS,
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25), index=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
    )
    _recreate_patients()


def downgrade() -> None:
    op.drop_table(JOBS)
    _recreate_patients()


def _recreate_patients() -> None:
    connection = op.get_bind()
    tables = read_model_tables()
    names = TABLES["patients"]
    for name in reversed(names):
        tables[name].drop(connection, checkfirst=True)
    for name in names:
        tables[name].create(connection)
    create_indexes(connection, tables, names)
    tracking = tables.metadata.tables["ledger_projections"]
    connection.execute(sa.delete(tracking).where(tracking.c.projection == "patients"))
