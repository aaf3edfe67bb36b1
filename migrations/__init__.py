"""Alembic revisions for every table trial-ledger owns (the event tables excepted)."""
