"""Alembic environment: runs against the engine handed over by ``ledger.database``.

From the command line (``alembic -c alembic.ini upgrade head``) it opens
``LEDGER_DATABASE_URL`` (default ``sqlite:///ledger.sqlite``) instead.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from ledger.database import VERSION_TABLE
from ledger.persistence import Base

engine = context.config.attributes.get("engine") or create_engine(
    os.environ.get("LEDGER_DATABASE_URL") or "sqlite:///ledger.sqlite"
)

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE)
    context.run_migrations()
