"""Two processes writing the same patient at once: one wins, the other re-reads and re-checks.

Nothing is lost and nothing is recorded twice, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import multiprocessing
from datetime import date, timedelta
from pathlib import Path

import pytest

from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.clock import FixedClock
from ledger.commands import DecideEscalation, EnrollPatient, RecordBosutinibDose, ReportToxicity, StartCycle
from ledger.domain.values import Actor, Attribution, Decision, Phase, Role
from ledger.errors import RuleViolations
from ledger.interfaces.importer import import_file
from ledger.queries import patient_document, patient_history

START = date(2016, 2, 2)
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"


def record_doses(url: str, user: str, days: list[int], barrier: multiprocessing.synchronize.Barrier) -> tuple[int, int]:
    """Record a dose on each cycle day given; (recorded, refused by BOS-DAILY)."""
    ledger = build_ledger(Settings(database_url=url, user=user))
    actor = Actor(user, Role.COORDINATOR)
    recorded = refused = 0
    barrier.wait()
    for day in days:
        try:
            ledger.handle(RecordBosutinibDose(patient_id="P001", taken_on=START + timedelta(days=day - 1), dose_mg=300), actor)
            recorded += 1
        except RuleViolations as refusal:
            assert refusal.rule_id == "BOS-DAILY", refusal
            refused += 1
    ledger.close()
    return recorded, refused


def prepare(ledger: TrialLedger, investigator: Actor) -> None:
    ledger.handle(
        EnrollPatient(
            patient_id="P001", enrolled_on=date(2016, 2, 1), diagnosis="PH_POS_ALL", phase=Phase.I,
            cd22_percent=60.0, abl_mutations=[], bsa_m2=1.8,
        ),
        investigator,
    )
    ledger.handle(StartCycle(patient_id="P001", cycle=1, started_on=START), investigator)


def run_two_writers(url: str, first: list[int], second: list[int]) -> list[tuple[int, int]]:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(2)
        with context.Pool(2) as pool:
            jobs = [
                pool.apply_async(record_doses, (url, "writer.a", first, barrier)),
                pool.apply_async(record_doses, (url, "writer.b", second, barrier)),
            ]
            return [job.get(timeout=120) for job in jobs]


def test_two_writers_on_different_days_of_one_patient_lose_nothing(ledger: TrialLedger, database_url: str, investigator: Actor) -> None:
    prepare(ledger, investigator)
    results = run_two_writers(database_url, list(range(1, 29, 2)), list(range(2, 29, 2)))
    assert results == [(14, 0), (14, 0)]
    entries = patient_history(ledger, "P001")["entries"]
    doses = sorted(e["data"]["taken_on"] for e in entries if e["type"] == "BosutinibDoseRecorded")
    assert doses == [START + timedelta(days=i) for i in range(28)]
    assert patient_document(ledger, "P001", valid_on=date(2016, 3, 1))["bosutinib_doses"] == 28


def test_two_writers_racing_for_the_same_days_record_each_day_once(ledger: TrialLedger, database_url: str, investigator: Actor) -> None:
    prepare(ledger, investigator)
    days = list(range(1, 29))
    results = run_two_writers(database_url, days, days)
    assert sum(r for r, _ in results) == 28
    assert sum(f for _, f in results) == 28
    entries = patient_history(ledger, "P001")["entries"]
    doses = [e["data"]["taken_on"] for e in entries if e["type"] == "BosutinibDoseRecorded"]
    assert len(doses) == len(set(doses)) == 28


def import_with(url: str, user: str, path: str, barrier: multiprocessing.synchronize.Barrier) -> tuple[int, int, int]:
    """Import the file; (recorded, duplicates, problems)."""
    ledger = build_ledger(Settings(database_url=url, user=user))
    barrier.wait()
    report = import_file(ledger, Path(path), Actor(user, Role.COORDINATOR), batch_size=10)
    ledger.close()
    return report.recorded, report.duplicates, len(report.problems)


def test_two_imports_of_one_file_with_command_ids_record_each_line_once(ledger: TrialLedger, database_url: str, tmp_path: Path) -> None:
    lines = [json.loads(line) for line in EXAMPLE.read_text().splitlines()]
    path = tmp_path / "ids.jsonl"
    path.write_text("\n".join(json.dumps({**line, "command_id": f"line-{n}"}) for n, line in enumerate(lines)) + "\n")
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(2)
        with context.Pool(2) as pool:
            jobs = [pool.apply_async(import_with, (database_url, user, str(path), barrier)) for user in ("importer.a", "importer.b")]
            results = [job.get(timeout=120) for job in jobs]
    assert sum(r for r, _, _ in results) == len(lines)
    assert all(recorded + duplicates == len(lines) and problems == 0 for recorded, duplicates, problems in results)
    entries = patient_history(ledger, "S001")["entries"]
    assert len(entries) == len(lines)
    assert len({e["entry_id"] for e in entries}) == len(lines)


def test_a_writer_sees_what_another_writer_committed_since_its_own_last_write(
    ledger: TrialLedger, database_url: str, clock: FixedClock, investigator: Actor
) -> None:
    """A writer's cached patient is used as it is only while no one else has written since."""
    prepare(ledger, investigator)
    ledger.handle(RecordBosutinibDose(patient_id="P001", taken_on=START, dose_mg=300), investigator)
    other = build_ledger(Settings(database_url=database_url, user="writer.b"), clock=clock)
    try:
        other.handle(RecordBosutinibDose(patient_id="P001", taken_on=START + timedelta(days=1), dose_mg=300), investigator)
    finally:
        other.close()
    with pytest.raises(RuleViolations) as refusal:  # the second day is already taken, by the other writer
        ledger.handle(RecordBosutinibDose(patient_id="P001", taken_on=START + timedelta(days=1), dose_mg=300), investigator)
    assert refusal.value.rule_id == "BOS-DAILY"
    ledger.handle(RecordBosutinibDose(patient_id="P001", taken_on=START + timedelta(days=2), dose_mg=300), investigator)
    assert patient_document(ledger, "P001", valid_on=date(2016, 3, 1))["bosutinib_doses"] == 3


def test_a_decision_rests_on_a_dlt_another_writer_recorded_since_this_writers_last_write(
    ledger: TrialLedger, database_url: str, clock: FixedClock, investigator: Actor
) -> None:
    """The decision saves only the stratum's record, so only a fresh read of the patients can see the DLT."""
    start = date(2016, 1, 4)
    for n in (1, 2, 3):
        ledger.handle(
            EnrollPatient(patient_id=f"P{n}", enrolled_on=start, diagnosis="PH_POS_ALL", phase=Phase.I, cd22_percent=60.0, abl_mutations=[], bsa_m2=1.8),
            investigator,
        )
        ledger.handle(StartCycle(patient_id=f"P{n}", cycle=1, started_on=start), investigator)
    other = build_ledger(Settings(database_url=database_url, user="writer.b"), clock=clock)
    try:
        other.handle(
            ReportToxicity(patient_id="P2", onset_on=start + timedelta(days=5), term="Rash", grade=4, attribution=Attribution.PROBABLE), investigator
        )
    finally:
        other.close()
    escalate = DecideEscalation(stratum="default", decided_on=start + timedelta(days=35), dose_mg=300, decision=Decision.ESCALATE)
    with pytest.raises(RuleViolations) as refusal:
        ledger.handle(escalate, investigator)
    assert refusal.value.rule_id == "ESC-3PLUS3"
