"""Database failures: an outage is waited out, a full or read-only database is named, nothing committed is lost.

On PostgreSQL an outage is made for this test's database alone: new connections are refused
(``ALLOW_CONNECTIONS false``) and the open ones terminated, as a server restart does, then
allowed again. A full disk and a read-only file are made on SQLite with its own limits
(``max_page_count``, ``query_only``): the driver then fails exactly as it does for the real
conditions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.exc import OperationalError as SQLOperationalError
from sqlalchemy.orm import Session

from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.domain.values import Actor, Role
from ledger.errors import CommitUnknown, StoreUnavailable
from ledger.integrity import verify
from ledger.interfaces import cli
from ledger.interfaces.schemas import parse_command
from ledger.persistence import EntryRow

COORDINATOR = Actor("coord.lee", Role.COORDINATOR)
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"


def enroll(patient_id: str, command_id: str | None = None) -> Any:
    return parse_command({
        "command": "enroll_patient", "patient_id": patient_id, "enrolled_on": "2016-03-01", "diagnosis": "PH_POS_ALL", "phase": "I",
        "stratum": f"s-{patient_id}", "cd22_percent": 50.0, "abl_mutations": [], "bsa_m2": 1.8,
        **({"command_id": command_id} if command_id else {}),
    })


def entries(ledger: TrialLedger) -> int:
    with ledger.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(EntryRow)).scalar_one())


@contextmanager
def outage(database_url: str) -> Iterator[Any]:
    """This database refuses connections and drops the open ones until the block's ``end()`` is called (or it exits)."""
    name = database_url.rsplit("/", 1)[1]
    admin = create_engine(database_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")

    def allow(on: bool) -> None:
        with admin.connect() as connection:
            connection.execute(text(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {'true' if on else 'false'}"))
            if not on:
                connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"),
                                   {"name": name})

    class Window:
        def end(self) -> None:
            allow(True)

    allow(False)
    try:
        yield Window()
    finally:
        allow(True)
        admin.dispose()


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("an outage of the database server: SQLite has no server")
    return database_url


def test_a_write_during_a_server_outage_waits_and_is_recorded_once(ledger: TrialLedger, postgres_url: str) -> None:
    ledger.handle(enroll("O001"), COORDINATOR)
    before = entries(ledger)
    waits: list[str] = []
    ledger.on_outage = waits.append
    outcome: list[Any] = []
    with outage(postgres_url) as window:
        writer = threading.Thread(target=lambda: outcome.append(ledger.handle(enroll("O002"), COORDINATOR)))
        writer.start()
        time.sleep(1.5)
        assert writer.is_alive() and waits, "the write neither waited nor said so"
        window.end()
        writer.join(60)
    assert outcome and not outcome[0].duplicate
    assert entries(ledger) == before + len(outcome[0].entry_ids)
    assert any("cannot be reached" in w for w in waits)
    assert verify.verify(ledger.engine).intact


def test_after_the_server_dropped_every_connection_the_next_command_needs_no_restart(ledger: TrialLedger, postgres_url: str) -> None:
    ledger.handle(enroll("O003"), COORDINATOR)
    with outage(postgres_url) as window:
        window.end()  # every pooled connection is now dead, the server is back
    waits: list[str] = []
    ledger.on_outage = waits.append
    ledger.handle(enroll("O004"), COORDINATOR)
    assert waits == []  # the pool tested its connections and took new ones: not even one failed attempt


def test_an_outage_that_outlasts_the_wait_is_reported_and_records_nothing(ledger: TrialLedger, postgres_url: str) -> None:
    before = entries(ledger)
    ledger.outage_seconds = 1.0
    with outage(postgres_url), pytest.raises(StoreUnavailable, match="could not be reached for 1 s"):
        ledger.handle(enroll("O005"), COORDINATOR)
    assert entries(ledger) == before


@pytest.fixture
def lost_commit(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The connection is lost during the next commit (the transaction does not commit)."""
    calls: list[int] = []
    real_commit = Session.commit

    def commit(self: Session) -> None:
        if not calls:
            calls.append(1)
            self.rollback()
            raise SQLOperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
        real_commit(self)

    monkeypatch.setattr(Session, "commit", commit)
    return calls


def test_a_connection_lost_while_committing_is_retried_only_for_a_command_with_an_id(ledger: TrialLedger, lost_commit: list[int]) -> None:
    before = entries(ledger)
    with pytest.raises(CommitUnknown, match="may or may not have been recorded"):
        ledger.handle(enroll("O006"), COORDINATOR)
    assert entries(ledger) == before and lost_commit == [1]
    lost_commit.clear()
    outcome = ledger.handle(enroll("O007", command_id="edc-o007"), COORDINATOR)  # safe to send again: a duplicate would be known
    assert lost_commit == [1] and not outcome.duplicate and entries(ledger) == before + len(outcome.entry_ids)


def limit_sqlite(monkeypatch: pytest.MonkeyPatch, pragma: str) -> None:
    """Every connection the CLI opens gets ``pragma`` (after the ledger's own tuning)."""
    from ledger import bootstrap

    tune = bootstrap.tune_sqlite

    def tuned(engine: Any) -> None:
        tune(engine)

        @event.listens_for(engine, "connect")
        def _limit(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(pragma)

        engine.dispose()

    monkeypatch.setattr(bootstrap, "tune_sqlite", tuned)


@pytest.mark.parametrize(
    ("pragma", "named"),
    [("PRAGMA max_page_count = 1", "the disk holding the database is full"), ("PRAGMA query_only = 1", "the database cannot be written")],
    ids=["disk-full", "read-only"],
)
def test_a_full_or_read_only_database_is_named_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pragma: str, named: str
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    monkeypatch.setenv("LEDGER_DATABASE_URL", url)
    monkeypatch.setenv("LEDGER_USER", "coord.lee")
    assert cli.main(["import", str(EXAMPLE)]) == 0
    ledger = build_ledger(Settings(database_url=url), create=False)
    before = entries(ledger)
    ledger.close()
    capsys.readouterr()
    if "max_page_count" in pragma:  # no page beyond those the file has now
        pages = create_engine(url).connect().exec_driver_sql("PRAGMA page_count").scalar_one()
        pragma = f"PRAGMA max_page_count = {pages}"
    limit_sqlite(monkeypatch, pragma)

    more = cli.main(["enroll-patient", "O008", "--enrolled-on", "2016-03-01", "--diagnosis", "PH_POS_ALL", "--phase", "I",
                     "--stratum", "full", "--cd22-percent", "50", "--abl-mutations", "--bsa-m2", "1.8"])
    err = capsys.readouterr().err
    assert more == cli.EXIT_STORE and named in err and "Traceback" not in err
    monkeypatch.undo()
    ledger = build_ledger(Settings(database_url=url), create=False)
    try:
        assert entries(ledger) == before
        assert verify.verify(ledger.engine).intact
        ledger.handle(enroll("O009"), COORDINATOR)  # once there is room again, writing goes on
    finally:
        ledger.close()


def test_the_http_api_answers_503_during_an_outage_and_recovers_without_a_restart(postgres_url: str, ledger: TrialLedger) -> None:
    from ledger.interfaces.http import create_app
    from ledger.interfaces.http.context import ServerContext

    context = ServerContext.open(Settings(database_url=postgres_url, user="site.system", role=Role.COORDINATOR), poll_interval=0.02)
    client = create_app(context).test_client()
    try:
        assert client.get("/health").status_code == 200
        with outage(postgres_url) as window:
            down = client.get("/health")
            assert down.status_code == 503 and down.get_json()["ok"] is False
            assert client.get("/events").status_code == 503
            back = threading.Timer(1.0, window.end)  # back while the next command waits for it
            back.start()
            posted = client.post("/commands/enroll_patient", json={
                "patient_id": "O010", "enrolled_on": "2016-03-01", "diagnosis": "PH_POS_ALL", "phase": "I", "stratum": "http-outage",
                "cd22_percent": 50.0, "abl_mutations": [], "bsa_m2": 1.8,
            })
            back.join()
        assert posted.status_code == 201, posted.get_json()
        assert client.get("/health").status_code == 200
        assert client.get("/patients/O010").get_json()["patient_id"] == "O010"
    finally:
        context.close()
