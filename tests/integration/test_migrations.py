"""A database made by an older version is refused until `ledger migrate` brings it up to date."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from ledger.bootstrap import Settings, build_ledger, build_store
from ledger.database import alembic_config, current_revision, head_revision, upgrade
from ledger.errors import DatabaseBehind

LEDGER = str(Path(sys.executable).parent / "ledger")


def old_database(url: str) -> None:
    """A database as the first release of the ledger left it: revision 0001."""
    store = build_store(Settings(database_url=url))
    engine = store.recorder.datastore.engine  # type: ignore[attr-defined]
    upgrade(engine, "0001")
    store.close()
    engine.dispose()


def test_a_new_database_gets_the_newest_tables(database_url: str) -> None:
    ledger = build_ledger(Settings(database_url=database_url))
    try:
        assert current_revision(ledger.engine) == head_revision()
    finally:
        ledger.close()


def test_a_database_at_an_older_revision_is_refused_with_what_to_do(database_url: str) -> None:
    old_database(database_url)
    with pytest.raises(DatabaseBehind) as refusal:
        build_ledger(Settings(database_url=database_url))
    assert "0001" in str(refusal.value) and "ledger migrate" in str(refusal.value)
    engine = create_engine(database_url)
    assert current_revision(engine) == "0001"  # refused, not changed
    engine.dispose()


def test_ledger_migrate_upgrades_it_and_the_cli_then_runs(database_url: str, tmp_path: Path) -> None:
    old_database(database_url)
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url}
    refused = subprocess.run([LEDGER, "escalation", "show"], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert refused.returncode == 6 and "ledger migrate" in refused.stderr
    migrated = subprocess.run([LEDGER, "migrate"], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert migrated.returncode == 0, migrated.stderr
    assert head_revision() in migrated.stdout  # type: ignore[operator]
    assert subprocess.run([LEDGER, "escalation", "show"], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60).returncode == 0


def test_a_revision_that_recreates_a_read_model_leaves_it_filled_after_ledger_migrate(database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_USER": "importer"}
    example = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"
    assert subprocess.run([LEDGER, "import", str(example)], env=env, capture_output=True, text=True, timeout=120).returncode == 0
    engine = create_engine(database_url)
    try:
        command.downgrade(alembic_config(engine), "0003")  # as a database of the release before the scheduler
        assert current_revision(engine) == "0003"
        with engine.connect() as connection:
            assert connection.execute(text("select count(*) from rm_patients")).scalar() == 0
        migrated = subprocess.run([LEDGER, "migrate"], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert migrated.returncode == 0, migrated.stderr
        with engine.connect() as connection:
            rows = connection.execute(text("select patient_id, status, lost_on from rm_patients")).all()
            assert [(r.patient_id, r.lost_on) for r in rows] == [("S001", None)]
            assert connection.execute(text("select count(*) from ledger_scheduler_jobs")).scalar() == 0
    finally:
        engine.dispose()
