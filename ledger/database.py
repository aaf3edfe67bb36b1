"""Bring the ledger's own tables to the newest Alembic revision (``migrations/``).

The event tables themselves (``ledger_events``) are created by the event store's recorder;
the revisions own every other table. Alembic keeps its mark in ``ledger_alembic_version``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

import migrations

VERSION_TABLE = "ledger_alembic_version"


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


def is_new(engine: Engine) -> bool:
    """No table of the ledger's own exists yet (the event store may have made its tables)."""
    return current_revision(engine) is None and not inspect(engine).has_table("ledger_entries")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision``; a no-op when it is there already."""
    if revision == "head" and current_revision(engine) == head_revision():
        return
    command.upgrade(alembic_config(engine), revision)
