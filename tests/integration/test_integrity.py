"""Tampering done directly in the database is detected by ``verify``, on SQLite and PostgreSQL.

Each test records a small trial, verifies it intact, tampers with one thing as someone with
write access to the database could, and checks that verification fails at the right place.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Table, delete, func, insert, select, update

from ledger.application import TrialLedger
from ledger.commands import StartCycle
from ledger.domain.values import Actor, Role
from ledger.errors import ChainBroken
from ledger.integrity.backfill import link_existing
from ledger.integrity.checkpoint import CheckpointError, load_or_create_key, read_checkpoint, seal
from ledger.integrity.verify import VerifyReport, verify
from ledger.interfaces.importer import import_file
from ledger.persistence import ChainHead, EntryRow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"


@pytest.fixture
def recorded(ledger: TrialLedger, tmp_path: Path) -> TrialLedger:
    second = tmp_path / "second.jsonl"
    second.write_text(EXAMPLE.read_text().replace("S001", "S002"))
    for path in (EXAMPLE, second):
        import_file(ledger, path, Actor("coordinator.kim", Role.COORDINATOR))
    assert verify(ledger.engine).intact
    return ledger


def events(ledger: TrialLedger) -> Table:
    return ledger.recorder.events_record_cls.__table__  # type: ignore[return-value]


def entries() -> Table:
    return EntryRow.__table__  # type: ignore[return-value]


def tamper(ledger: TrialLedger, change: Callable[[Connection], Any]) -> VerifyReport:
    with ledger.engine.begin() as connection:
        change(connection)
    return verify(ledger.engine)


def dose_position(ledger: TrialLedger, patient: str = "S001", nth: int = 3) -> int:
    with ledger.engine.connect() as connection:
        rows = connection.execute(
            select(entries().c.position).where(entries().c.patient_id == patient, entries().c.kind == "BosutinibDoseRecorded").order_by(entries().c.position)
        ).scalars().all()
    return int(rows[nth])


def first_problem(report: VerifyReport) -> tuple[int, str]:
    assert not report.intact
    return report.problems[0].position, report.problems[0].why


def test_an_untouched_ledger_verifies_and_its_head_is_the_last_link(recorded: TrialLedger) -> None:
    report = verify(recorded.engine)
    with recorded.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(events(recorded))).scalar()
        head = connection.execute(select(ChainHead.position, ChainHead.chain_hash)).one()
        last = connection.execute(select(entries().c.chain_hash).order_by(entries().c.position.desc()).limit(1)).scalar()
    assert report.intact and report.events == count
    assert (head.position, head.chain_hash) == (report.position, report.chain_hash) and last == report.chain_hash


def test_a_changed_payload_byte_is_detected_at_its_position(recorded: TrialLedger) -> None:
    at = dose_position(recorded)

    def change(connection: Connection) -> None:
        state = connection.execute(select(events(recorded).c.state).where(events(recorded).c.id == at)).scalar()
        changed = bytes(state).replace(b'"dose_mg":300', b'"dose_mg":400')
        assert changed != bytes(state)
        connection.execute(update(events(recorded)).where(events(recorded).c.id == at).values(state=changed))

    position, why = first_problem(tamper(recorded, change))
    assert position == at and "not what was recorded" in why


@pytest.mark.parametrize("column, value", [("recorded_by", "someone.else"), ("recorded_at", None), ("occurred_on", None)])
def test_a_changed_time_user_or_date_in_the_index_is_detected(recorded: TrialLedger, column: str, value: Any) -> None:
    at = dose_position(recorded)

    def change(connection: Connection) -> None:
        row = connection.execute(select(entries()).where(entries().c.position == at)).one()._mapping
        new = value if value is not None else row[column] - timedelta(days=1)
        connection.execute(update(entries()).where(entries().c.position == at).values({column: new}))

    assert first_problem(tamper(recorded, change))[0] == at


def test_a_changed_user_inside_the_stored_event_is_detected(recorded: TrialLedger) -> None:
    at = dose_position(recorded)

    def change(connection: Connection) -> None:
        state = bytes(connection.execute(select(events(recorded).c.state).where(events(recorded).c.id == at)).scalar())
        changed = state.replace(b"coordinator.kim", b"dr.mallory")
        assert changed != state
        connection.execute(update(events(recorded)).where(events(recorded).c.id == at).values(state=changed))

    assert first_problem(tamper(recorded, change))[0] == at


def test_a_deleted_event_is_detected_whether_or_not_its_index_entry_went_too(recorded: TrialLedger) -> None:
    at = dose_position(recorded)
    with recorded.engine.begin() as connection:
        connection.execute(delete(events(recorded)).where(events(recorded).c.id == at))
    position, why = first_problem(verify(recorded.engine))
    assert position == at and "deleted" in why
    with recorded.engine.begin() as connection:
        connection.execute(delete(entries()).where(entries().c.position == at))
    position, why = first_problem(verify(recorded.engine))
    assert position > at and "removed or inserted" in why  # the next event no longer follows


def test_an_inserted_forged_event_is_detected(recorded: TrialLedger) -> None:
    at = dose_position(recorded)

    def forge(connection: Connection) -> None:
        row = dict(connection.execute(select(events(recorded)).where(events(recorded).c.id == at)).one()._mapping)
        last = connection.execute(select(func.max(events(recorded).c.originator_version)).where(
            events(recorded).c.originator_id == row["originator_id"])).scalar()
        top = connection.execute(select(func.max(events(recorded).c.id))).scalar()
        connection.execute(insert(events(recorded)).values({**row, "id": top + 1, "originator_version": last + 1}))

    position, why = first_problem(tamper(recorded, forge))
    assert "added outside the ledger" in why  # past the chain's head, which only the ledger moves


def test_a_forged_event_inside_the_chain_is_detected(recorded: TrialLedger) -> None:
    at = dose_position(recorded)

    def forge(connection: Connection) -> None:
        table = events(recorded)
        row = dict(connection.execute(select(table).where(table.c.id == at)).one()._mapping)
        connection.execute(delete(entries()).where(entries().c.position == at))
        connection.execute(update(table).where(table.c.id == at).values(state=row["state"] + b" "))

    position, why = first_problem(tamper(recorded, forge))
    assert position == at and "no entry in the index" in why


@pytest.mark.parametrize("column", ["aggregate_id", "aggregate_version"])
def test_an_index_row_moved_to_another_record_or_version_is_detected(recorded: TrialLedger, column: str) -> None:
    at = dose_position(recorded)
    value: Any = "00000000-0000-0000-0000-000000000000" if column == "aggregate_id" else 999
    position, why = first_problem(tamper(recorded, lambda c: c.execute(update(entries()).where(entries().c.position == at).values({column: value}))))
    assert position == at and "the index was changed" in why


def test_a_deleted_chain_head_is_detected_and_nothing_more_is_written(recorded: TrialLedger) -> None:
    head = ChainHead.__table__
    position, why = first_problem(tamper(recorded, lambda c: c.execute(delete(head))))  # type: ignore[arg-type]
    assert "head" in why and "missing" in why
    with recorded.engine.connect() as connection:
        before = connection.execute(select(func.max(events(recorded).c.id))).scalar()
    with pytest.raises(ChainBroken):
        recorded.handle(StartCycle(patient_id="S002", cycle=3, started_on=date(2016, 3, 29)), Actor("coordinator.kim", Role.COORDINATOR))
    with recorded.engine.connect() as connection:
        assert connection.execute(select(func.max(events(recorded).c.id))).scalar() == before


def test_commits_during_a_verification_are_no_false_alarm(recorded: TrialLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ledger.integrity.verify.PAGE", 7)
    kim = Actor("coordinator.kim", Role.COORDINATOR)
    written: list[int] = []

    def write_meanwhile(position: int, stop: int) -> None:
        if not written:
            written.append(position)
            recorded.handle(StartCycle(patient_id="S002", cycle=3, started_on=date(2016, 3, 29)), kim)

    report = verify(recorded.engine, on_progress=write_meanwhile)
    assert written and report.intact, report.problems
    assert verify(recorded.engine).position > report.position  # the next pass covers what was committed meanwhile


def test_two_swapped_events_are_detected(recorded: TrialLedger) -> None:
    first, second = dose_position(recorded, nth=3), dose_position(recorded, nth=4)

    def swap(connection: Connection) -> None:
        table = events(recorded)
        a, b = (bytes(connection.execute(select(table.c.state).where(table.c.id == p)).scalar()) for p in (first, second))
        connection.execute(update(table).where(table.c.id == first).values(state=b))
        connection.execute(update(table).where(table.c.id == second).values(state=a))

    assert first_problem(tamper(recorded, swap))[0] == first


def test_a_truncated_tail_is_detected(recorded: TrialLedger) -> None:
    with recorded.engine.connect() as connection:
        last = connection.execute(select(func.max(events(recorded).c.id))).scalar()

    def truncate(connection: Connection) -> None:
        connection.execute(delete(entries()).where(entries().c.position > last - 3))
        connection.execute(delete(events(recorded)).where(events(recorded).c.id > last - 3))

    position, why = first_problem(tamper(recorded, truncate))
    assert "removed from the end" in why and position == last - 2


def test_a_rewrite_that_recomputes_every_link_passes_the_chain_but_not_the_checkpoint(recorded: TrialLedger, tmp_path: Path) -> None:
    key, _ = load_or_create_key(tmp_path / "auditor.pem")
    report = verify(recorded.engine)
    path = tmp_path / "checkpoint.json"
    path.write_text(json.dumps(seal(key, report.position, report.chain_hash, report.events, "2026-03-01T09:00:00+00:00", "auditor")))
    checkpoint = read_checkpoint(path)
    assert verify(recorded.engine, checkpoint).intact
    at = dose_position(recorded)

    def rewrite(connection: Connection) -> None:
        table = events(recorded)
        state = bytes(connection.execute(select(table.c.state).where(table.c.id == at)).scalar())
        connection.execute(update(table).where(table.c.id == at).values(state=state.replace(b'"dose_mg":300', b'"dose_mg":400')))
        connection.execute(delete(ChainHead.__table__))
        link_existing(connection)  # every link and the head recomputed, as the ledger computes them

    assert tamper(recorded, rewrite).intact  # the chain alone cannot tell
    position, why = first_problem(verify(recorded.engine, checkpoint))
    assert "rewritten" in why and position == checkpoint.position


def test_a_checkpoint_altered_or_signed_with_another_key_is_refused(recorded: TrialLedger, tmp_path: Path) -> None:
    key, created = load_or_create_key(tmp_path / "auditor.pem")
    assert created and oct((tmp_path / "auditor.pem").stat().st_mode & 0o777) == "0o600"
    document = seal(key, 10, "ab" * 32, 10, "2026-03-01T09:00:00+00:00", "auditor")
    path = tmp_path / "checkpoint.json"
    path.write_text(json.dumps({**document, "position": 11}))
    with pytest.raises(CheckpointError, match="signature does not verify"):
        read_checkpoint(path)
    path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="not the trusted key"):
        read_checkpoint(path, trusted_key="00" * 32)
    assert read_checkpoint(path, trusted_key=document["public_key"]).position == 10
