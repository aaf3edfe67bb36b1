"""The real APScheduler against the real database, for a few seconds of wall time.

The ledger's clock runs from two seconds before a follow-up window's day is over, so the
job planned for it fires while the test watches; a second writer's facts reach the driver
through its poll. And ``ledger scheduler run --once`` on an imported history.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.clock import OffsetClock
from ledger.commands import CorrectEntry, EndTreatment, EnrollPatient, RecordDeath, StartCycle
from ledger.domain.values import Actor, EndReason, Phase, Role
from ledger.errors import CommandRefused
from ledger.queries import patient_document, patient_history
from ledger.scheduling.driver import POLL_JOB, SchedulerDriver

LEDGER = str(Path(sys.executable).parent / "ledger")
INVESTIGATOR = Actor("dr.jain", Role.INVESTIGATOR)


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def enrolled_and_ended(ledger: TrialLedger, patient_id: str, started: date, ended: date, stratum: str = "default") -> None:
    ledger.handle(
        EnrollPatient(patient_id=patient_id, enrolled_on=started, diagnosis="PH_POS_ALL", phase=Phase.I, cd22_percent=60.0,
                      abl_mutations=[], bsa_m2=1.8, stratum=stratum),
        INVESTIGATOR,
    )
    ledger.handle(StartCycle(patient_id=patient_id, cycle=1, started_on=started), INVESTIGATOR)
    ledger.handle(EndTreatment(patient_id=patient_id, ended_on=ended, end_reason=EndReason.COMPLETED), INVESTIGATOR)


@pytest.fixture
def running(database_url: str) -> Iterator[tuple[TrialLedger, SchedulerDriver]]:
    # visit 1 of an end of treatment on 2025-03-03 closes on 2025-06-09: the clock starts 2 s before that day is over
    clock = OffsetClock.starting_at(datetime(2025, 6, 9, 23, 59, 58, tzinfo=UTC))
    ledger = build_ledger(Settings(database_url=database_url, user="scheduler-host"), clock=clock)
    enrolled_and_ended(ledger, "P1", date(2025, 1, 6), date(2025, 3, 3))
    enrolled_and_ended(ledger, "P2", date(2025, 1, 6), date(2025, 5, 1))
    driver = SchedulerDriver(ledger, poll_seconds=0.5)
    try:
        yield ledger, driver
    finally:
        driver.shutdown()
        ledger.close()


def test_a_planned_job_fires_when_its_window_closes_and_a_second_writers_death_cancels_jobs(
    running: tuple[TrialLedger, SchedulerDriver], database_url: str
) -> None:
    ledger, driver = running
    driver.start()
    started = [e["type"] for e in patient_history(ledger, "P1")["entries"]]
    assert "DltEvaluationCompleted" in started and "FollowUpMissed" not in started  # the catch-up at start; visit 1 not over yet
    jobs = {job.id for job in driver.scheduler.get_jobs()} - {POLL_JOB}
    assert "fu-missed:P1:1:2025-06-09" in jobs and "fu-completed:P2:2026-05-01" in jobs
    assert driver.plan() == len(jobs)  # planning again keeps one job per action
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("select count(*) from ledger_scheduler_jobs")).scalar() == len(jobs) + 1  # and the poll
    finally:
        engine.dispose()

    def missed() -> list[dict[str, object]]:
        return [e for e in patient_history(ledger, "P1")["entries"] if e["type"] == "FollowUpMissed"]

    assert wait_for(lambda: len(missed()) == 1), "the job for visit 1 did not fire"
    entry = missed()[0]
    assert entry["recorded_by"] == "system:scheduler" and entry["occurred_on"] == date(2025, 6, 9)
    assert entry["recorded_at"].date() == date(2025, 6, 10)  # type: ignore[attr-defined]

    other = build_ledger(Settings(database_url=database_url, user="site"), clock=OffsetClock(ledger.clock.now() - datetime.now(UTC)))
    try:
        ended = next(e for e in patient_history(other, "P2")["entries"] if e["type"] == "TreatmentEnded")
        other.handle(CorrectEntry(patient_id="P2", entry_id=str(ended["entry_id"]), changes={"ended_on": "2025-05-02"}, reason="EOT form"), INVESTIGATOR)

        def p2_jobs() -> set[str]:
            return {job.id for job in driver.scheduler.get_jobs() if job.id != POLL_JOB and job.args[0] == "P2"}

        assert wait_for(lambda: "fu-completed:P2:2026-05-02" in p2_jobs() and "fu-completed:P2:2026-05-01" not in p2_jobs()), (
            "the corrected end of treatment did not move P2's jobs"
        )
        other.handle(RecordDeath(patient_id="P2", died_on=date(2025, 6, 1)), INVESTIGATOR)
    finally:
        other.close()
    assert wait_for(lambda: not any(job.id.startswith("fu-") and job.args[0] == "P2" for job in driver.scheduler.get_jobs())), (
        "the death of P2 did not cancel its follow-up jobs"
    )
    assert len(missed()) == 1


def test_scheduler_run_once_completes_a_history_that_ended_two_years_ago(database_url: str, tmp_path: Path) -> None:
    today = date.today()
    ended = today - timedelta(days=730)
    started = ended - timedelta(days=56)
    lines = [
        {"command": "enroll_patient", "patient_id": "H1", "enrolled_on": (started - timedelta(days=2)).isoformat(), "diagnosis": "PH_POS_ALL",
         "phase": "I", "cd22_percent": 70.0, "abl_mutations": [], "bsa_m2": 1.9},
        {"command": "start_cycle", "patient_id": "H1", "cycle": 1, "started_on": started.isoformat()},
        {"command": "end_treatment", "patient_id": "H1", "ended_on": ended.isoformat(), "end_reason": "COMPLETED"},
        {"command": "record_follow_up", "patient_id": "H1", "contacted_on": (ended + timedelta(days=80)).isoformat(), "vital_status": "ALIVE"},
        {"command": "record_follow_up", "patient_id": "H1", "contacted_on": (ended + timedelta(days=255)).isoformat(), "vital_status": "ALIVE"},
    ]
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_USER": "importer"}
    assert subprocess.run([LEDGER, "import", str(path)], env=env, capture_output=True, text=True, timeout=120).returncode == 0

    shown = subprocess.run([LEDGER, "schedule", "show", "--json"], env=env, capture_output=True, text=True, timeout=120)
    items = json.loads(shown.stdout)["items"]
    assert [(i["action"], i["visit"], i["overdue"]) for i in items] == [
        ("dlt_evaluation_completed", None, True), ("follow_up_missed", 2, True), ("follow_up_missed", 4, True), ("follow_up_completed", None, True),
    ]
    first = subprocess.run([LEDGER, "scheduler", "run", "--once", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["recorded"] == 4
    second = subprocess.run([LEDGER, "scheduler", "run", "--once", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(second.stdout)["recorded"] == 0 and json.loads(second.stdout)["due"] == 0

    ledger = build_ledger(Settings(database_url=database_url))
    try:
        doc = patient_document(ledger, "H1")
        assert doc["status"] == "COMPLETED"
        assert doc["follow_up"]["visits"] == 2 and doc["follow_up"]["missed"] == 2
        types = [e["type"] for e in patient_history(ledger, "H1")["entries"]]
        assert types.count("FollowUpMissed") == 2 and types.count("FollowUpCompleted") == 1
    finally:
        ledger.close()
    summary = subprocess.run([LEDGER, "summary", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(summary.stdout)["status"] == {"COMPLETED": 1}  # the read models are current too


def run_once(url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_USER": "cron"}
    return subprocess.Popen([LEDGER, "scheduler", "run", "--once", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_schedulers_racing_record_each_due_entry_once(database_url: str) -> None:
    ledger = build_ledger(Settings(database_url=database_url, user="site"))
    try:
        for n in range(12):
            ended = date.today() - timedelta(days=400 + 7 * n)
            enrolled_and_ended(ledger, f"R{n:02d}", ended - timedelta(days=60), ended, stratum=f"s{n // 3}")  # three a cohort
    finally:
        ledger.close()
    racers = [run_once(database_url), run_once(database_url)]
    reports = []
    for racer in racers:
        out, err = racer.communicate(timeout=180)
        assert racer.returncode == 0, err
        reports.append(json.loads(out))
    recorded = reports[0]["command_ids"] + reports[1]["command_ids"]
    assert len(recorded) == len(set(recorded)) == 12 * 6  # a DLT evaluation, four visits and the year's end each
    assert all(not r["refused"] for r in reports)
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            counts = dict(connection.execute(text(
                "select kind, count(*) from ledger_entries where recorded_by = 'system:scheduler' group by kind"
            )).tuples().all())
    finally:
        engine.dispose()
    assert counts == {"DltEvaluationCompleted": 12, "FollowUpMissed": 48, "FollowUpCompleted": 12}


def test_a_second_foreground_scheduler_on_the_same_database_is_refused_until_the_first_stops(
    running: tuple[TrialLedger, SchedulerDriver], database_url: str
) -> None:
    ledger, driver = running
    driver.start()
    other_ledger = build_ledger(Settings(database_url=database_url, user="second-host"), clock=ledger.clock)
    other = SchedulerDriver(other_ledger, poll_seconds=0.5)
    try:
        with pytest.raises(CommandRefused, match="SCHEDULER-RUNNING"):
            other.start()
        driver.shutdown()
        other.start()
        assert other.scheduler.running
    finally:
        other.shutdown()
        other_ledger.close()


def test_a_poll_whose_re_planning_fails_is_tried_again(running: tuple[TrialLedger, SchedulerDriver], monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, driver = running
    driver.start()
    driver.scheduler.pause()  # this test drives the polls itself
    ledger.handle(RecordDeath(patient_id="P2", died_on=date(2025, 6, 1)), INVESTIGATOR)
    before = driver.position
    calls: list[list[str]] = []

    def failing(patient_ids: list[str]) -> None:
        calls.append(patient_ids)
        raise OperationalError("SELECT", {}, Exception("the database went away"))

    with monkeypatch.context() as patch:
        patch.setattr(driver, "wake", failing)
        with pytest.raises(OperationalError):
            driver.poll()
    assert driver.position == before and len(calls) == 1 and "P2" in calls[0]
    driver.poll()  # the same entries again, now re-planned: P2's follow-up jobs are gone
    assert driver.position > before
    assert not any(job.id != POLL_JOB and job.args[0] == "P2" for job in driver.scheduler.get_jobs())
