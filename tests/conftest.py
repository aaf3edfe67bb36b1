"""Fixtures: a ledger on a fresh SQLite file and, when reachable, on PostgreSQL.

``ledger`` is parametrised over both backends, so every integration test runs on each.
PostgreSQL is reached through ``LEDGER_TEST_POSTGRES_URL`` (default: the local server's
``test`` database); the session creates a database of its own there (so parallel runs never
meet) and each test starts from empty tables in it. Where no
server can be reached the PostgreSQL half is skipped with the reason, unless
``LEDGER_TEST_REQUIRE_POSTGRES`` is set (as CI does), which makes it fail instead.

The relay's tests publish to NATS with JetStream at ``LEDGER_TEST_NATS_URL`` (default the local
server), each to a stream of its own (``relay_target``), skipped when no server answers unless
``LEDGER_TEST_REQUIRE_NATS`` is set.

Hypothesis runs its ``default`` profile; ``HYPOTHESIS_PROFILE=slow`` selects ``slow``: 1,000
examples where a test sets no number of its own, and the command-stream test's larger sizes
(more than 10,000 commands).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.clock import FixedClock
from ledger.domain.values import Actor, Role
from tests.jetstream_probes import delete_stream, jetstream_answers

settings.register_profile("slow", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

SERVER_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class PostgresDatabase:
    url: str | None  # None: no server could be reached, for the reason in ``why``
    why: str = ""


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabase]:
    """A database of this test session's own on the server."""
    name = f"ledger_test_{os.getpid()}"
    try:
        admin = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            connection.execute(text(f"CREATE DATABASE {name}"))
    except Exception as error:  # any driver error means: not reachable
        yield PostgresDatabase(None, f"PostgreSQL not reachable at {SERVER_URL}: {error.__class__.__name__}: {error}")
        return
    yield PostgresDatabase(SERVER_URL.rsplit("/", 1)[0] + f"/{name}")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def reset_postgres(url: str) -> None:
    """Empty the session's database: every table the ledger (or a test) made goes."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        return
    server: PostgresDatabase = request.getfixturevalue("postgres")
    if server.url is None:
        if os.environ.get("LEDGER_TEST_REQUIRE_POSTGRES"):
            pytest.fail(server.why)
        pytest.skip(server.why)
    reset_postgres(server.url)
    yield server.url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def ledger(database_url: str, clock: FixedClock) -> Iterator[TrialLedger]:
    trial = build_ledger(Settings(database_url=database_url, user="tester"), clock=clock)
    yield trial
    trial.close()


@pytest.fixture
def investigator() -> Actor:
    return Actor("dr.jain", Role.INVESTIGATOR)


@pytest.fixture
def coordinator() -> Actor:
    return Actor("coord.lee", Role.COORDINATOR)


@pytest.fixture(autouse=True)
def cheap_credential_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id at its cheapest parameters in-process: the same code, without 64 MiB per hash."""
    from argon2 import PasswordHasher
    from argon2.profiles import CHEAPEST

    monkeypatch.setattr("ledger.identity.credentials.HASHER", PasswordHasher.from_parameters(CHEAPEST))


# --- NATS JetStream, for the relay ---------------------------------------------------------

NATS_URL = os.environ.get("LEDGER_TEST_NATS_URL", "nats://127.0.0.1:4222")


@dataclass(frozen=True)
class NatsServer:
    url: str | None  # None: no server with JetStream could be reached, for the reason in ``why``
    why: str = ""


@dataclass(frozen=True)
class RelayTarget:
    """A stream and subject prefix of one test's own on the NATS server."""

    url: str
    stream: str
    prefix: str

    def argv(self) -> list[str]:
        return ["relay", "nats", "--url", self.url, "--stream", self.stream, "--subject-prefix", self.prefix]


@pytest.fixture(scope="session")
def nats_server() -> NatsServer:
    """The NATS server the relay tests publish to (``LEDGER_TEST_NATS_URL``), when one with JetStream answers."""
    try:
        jetstream_answers(NATS_URL)
    except Exception as error:  # any client error means: not reachable
        return NatsServer(None, f"NATS with JetStream not reachable at {NATS_URL}: {error.__class__.__name__}: {error}")
    return NatsServer(NATS_URL)


@pytest.fixture
def relay_target(nats_server: NatsServer) -> Iterator[RelayTarget]:
    """A fresh stream name and subject prefix, so tests never meet; the stream is deleted afterwards."""
    if nats_server.url is None:
        if os.environ.get("LEDGER_TEST_REQUIRE_NATS"):
            pytest.fail(nats_server.why)
        pytest.skip(nats_server.why)
    token = uuid4().hex[:12]
    target = RelayTarget(nats_server.url, f"TEST_{token}", f"test.{token}")
    yield target
    delete_stream(target.url, target.stream)
