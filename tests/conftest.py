"""Fixtures: a ledger on a fresh SQLite file and, when reachable, on PostgreSQL.

``ledger`` is parametrised over both backends, so every integration test runs on each.
PostgreSQL is taken from ``LEDGER_TEST_POSTGRES_URL`` (default: the local server's ``test``
database); each test gets its own schema-free database tables, dropped afterwards. Where no
server can be reached the PostgreSQL half is skipped with the reason, unless
``LEDGER_TEST_REQUIRE_POSTGRES`` is set (as CI does), which makes it fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.clock import FixedClock
from ledger.domain.values import Actor, Role

POSTGRES_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
LEDGER_TABLES = ("ledger_events", "ledger_entries", "ledger_commands", "ledger_alembic_version")


def postgres_available() -> str | None:
    """None when the server answers, else why not."""
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as error:  # any driver error means: not reachable
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {error.__class__.__name__}"


def reset_postgres() -> None:
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        for table in LEDGER_TABLES:
            connection.execute(text(f"DROP TABLE IF EXISTS {table} CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        return
    why = postgres_available()
    if why is not None:
        if os.environ.get("LEDGER_TEST_REQUIRE_POSTGRES"):
            pytest.fail(why)
        pytest.skip(why)
    reset_postgres()
    yield POSTGRES_URL
    reset_postgres()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc))


@pytest.fixture
def ledger(database_url: str, clock: FixedClock) -> Iterator[TrialLedger]:
    trial = build_ledger(Settings(database_url=database_url, user="tester"), clock=clock)
    yield trial
    trial.store.close()
    trial.store.recorder.datastore.engine.dispose()  # type: ignore[attr-defined]


@pytest.fixture
def investigator() -> Actor:
    return Actor("dr.jain", Role.INVESTIGATOR)


@pytest.fixture
def coordinator() -> Actor:
    return Actor("coord.lee", Role.COORDINATOR)
