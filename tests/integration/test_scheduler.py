"""Time-driven policies with a fake clock: follow-up visits, the year's end, DLT windows.

What is due is computed from the recorded course; the scheduler records it once, attributed
to ``system:scheduler``, dated the day the window closed, stamped when it ran.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ledger.application import TrialLedger
from ledger.clock import FixedClock
from ledger.commands import (
    CompleteFollowUp,
    CorrectEntry,
    EndTreatment,
    EnrollPatient,
    RecordDeath,
    RecordFollowUp,
    RecordFollowUpMissed,
    RecordLostToFollowUp,
    ReportToxicity,
    StartCycle,
)
from ledger.domain.values import Actor, Attribution, EndReason, Phase, VitalStatus
from ledger.errors import CommandRefused, RuleViolations
from ledger.queries import patient_document, patient_history
from ledger.scheduling import Scheduling

START = date(2025, 1, 6)  # cycle 1
ENDED = date(2025, 3, 3)  # end of treatment: visits due 2025-05-26, 08-18, 11-10, 2026-02-02; the year ends 2026-03-03


def at(clock: FixedClock, day: date) -> None:
    clock.at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)


def course(ledger: TrialLedger, investigator: Actor, patient_id: str = "P1", phase: Phase = Phase.I, ended: date | None = ENDED) -> None:
    ledger.handle(
        EnrollPatient(patient_id=patient_id, enrolled_on=START - timedelta(days=3), diagnosis="PH_POS_ALL", phase=phase,
                      cd22_percent=60.0, abl_mutations=[], bsa_m2=1.8),
        investigator,
    )
    ledger.handle(StartCycle(patient_id=patient_id, cycle=1, started_on=START), investigator)
    if ended is not None:
        ledger.handle(EndTreatment(patient_id=patient_id, ended_on=ended, end_reason=EndReason.COMPLETED), investigator)


def kinds(actions: list) -> list[tuple[str, int | None, date]]:  # type: ignore[type-arg]
    return [(a.kind, a.visit, a.closed_on) for a in actions]


@pytest.fixture
def scheduling(ledger: TrialLedger) -> Scheduling:
    return Scheduling(ledger)


def test_an_end_of_treatment_makes_four_visits_and_the_years_end_pending(
    ledger: TrialLedger, clock: FixedClock, investigator: Actor, scheduling: Scheduling
) -> None:
    at(clock, date(2025, 3, 10))
    course(ledger, investigator)
    assert kinds(scheduling.pending()) == [
        ("dlt_evaluation_completed", None, date(2025, 2, 2)),  # cycle 1 days 1-28
        ("follow_up_missed", 1, date(2025, 6, 9)),  # due day 84 (2025-05-26) + 14
        ("follow_up_missed", 2, date(2025, 9, 1)),
        ("follow_up_missed", 3, date(2025, 11, 24)),
        ("follow_up_missed", 4, date(2026, 2, 16)),
        ("follow_up_completed", None, date(2026, 3, 3)),
    ]
    assert [a.command_id for a in scheduling.pending()][1] == "fu-missed:P1:1:2025-06-09"
    assert [a.kind for a in scheduling.due()] == ["dlt_evaluation_completed"]  # its window closed on 2025-02-02


def test_a_window_that_closes_without_contact_is_recorded_missed_once_by_the_system_user(
    ledger: TrialLedger, clock: FixedClock, investigator: Actor, scheduling: Scheduling
) -> None:
    at(clock, date(2025, 3, 10))
    course(ledger, investigator)
    at(clock, date(2025, 6, 9))  # visit 1's last day: not missed yet
    assert "follow_up_missed" not in [a.kind for a in scheduling.due()]
    at(clock, date(2025, 6, 10))
    report = scheduling.run_due()
    assert sorted(report.recorded) == ["dlt-evaluated:P1:2025-02-02", "fu-missed:P1:1:2025-06-09"]
    missed = [e for e in patient_history(ledger, "P1")["entries"] if e["type"] == "FollowUpMissed"]
    assert len(missed) == 1
    assert missed[0]["recorded_by"] == "system:scheduler" and missed[0]["role"] == "system"
    assert missed[0]["occurred_on"] == date(2025, 6, 9)  # the day the window closed
    assert missed[0]["recorded_at"] == clock.now()  # when it ran
    assert missed[0]["data"] == {"visit": 1, "due_on": date(2025, 5, 26), "window_closed_on": date(2025, 6, 9)}
    again = scheduling.run_due()
    assert again.due == 0 and not again.recorded
    assert patient_document(ledger, "P1")["follow_up"]["missed"] == 1


def test_a_contact_inside_the_window_is_not_missed(ledger: TrialLedger, clock: FixedClock, investigator: Actor, scheduling: Scheduling) -> None:
    at(clock, date(2025, 3, 10))
    course(ledger, investigator)
    at(clock, date(2025, 6, 1))
    ledger.handle(RecordFollowUp(patient_id="P1", contacted_on=date(2025, 6, 1), vital_status=VitalStatus.ALIVE), investigator)
    at(clock, date(2025, 9, 2))
    report = scheduling.run_due()
    assert sorted(report.recorded) == ["dlt-evaluated:P1:2025-02-02", "fu-missed:P1:2:2025-09-01"]


def test_the_years_end_is_recorded_and_the_patient_is_completed(
    ledger: TrialLedger, clock: FixedClock, investigator: Actor, scheduling: Scheduling
) -> None:
    at(clock, date(2025, 3, 10))
    course(ledger, investigator)
    at(clock, date(2026, 3, 3))
    assert patient_document(ledger, "P1", valid_on=date(2026, 3, 3))["status"] == "FOLLOW_UP"
    assert "follow_up_completed" not in [a.kind for a in scheduling.due()]
    at(clock, date(2026, 3, 4))
    report = scheduling.run_due()
    assert "fu-completed:P1:2026-03-03" in report.recorded and len(report.recorded) == 6  # DLT evaluation, 4 visits, the year's end
    doc = patient_document(ledger, "P1")
    assert doc["status"] == "COMPLETED" and doc["follow_up"]["missed"] == 4
    assert scheduling.pending() == []


def test_a_dlt_window_closing_without_a_dlt_records_the_evaluation_and_with_one_records_nothing(
    ledger: TrialLedger, clock: FixedClock, investigator: Actor, scheduling: Scheduling
) -> None:
    at(clock, date(2025, 1, 20))
    course(ledger, investigator, "P1", ended=None)
    course(ledger, investigator, "P2", ended=None)
    ledger.handle(ReportToxicity(patient_id="P2", onset_on=date(2025, 1, 15), term="Rash", grade=3, attribution=Attribution.PROBABLE), investigator)
    course(ledger, investigator, "P3", ended=date(2025, 1, 20))  # left before the window closed: not evaluable
    at(clock, date(2025, 2, 2))  # the window's last day
    assert scheduling.due() == []
    at(clock, date(2025, 2, 3))
    assert sorted(scheduling.run_due().recorded) == ["dlt-evaluated:P1:2025-02-02"]  # P2 had a DLT


def test_a_scheduler_down_for_months_records_each_missed_visit_once_when_it_starts_again(
    ledger: TrialLedger, clock: FixedClock, investigator: Actor
) -> None:
    at(clock, date(2025, 3, 10))
    course(ledger, investigator)
    at(clock, date(2025, 6, 12))
    assert len(Scheduling(ledger).run_due().recorded) == 2  # the DLT evaluation and visit 1
    at(clock, date(2026, 9, 1))  # down since June of the year before
    restarted = Scheduling(ledger)
    report = restarted.run_due()
    assert sorted(report.recorded) == ["fu-completed:P1:2026-03-03", "fu-missed:P1:2:2025-09-01", "fu-missed:P1:3:2025-11-24", "fu-missed:P1:4:2026-02-16"]
    assert restarted.run_due().due == 0
    types = [e["type"] for e in patient_history(ledger, "P1")["entries"]]
    assert types.count("FollowUpMissed") == 4 and types.count("FollowUpCompleted") == 1 and types.count("DltEvaluationCompleted") == 1


def test_an_action_sent_twice_with_its_command_id_records_once(ledger: TrialLedger, clock: FixedClock, investigator: Actor) -> None:
    at(clock, date(2025, 3, 10))
    course(ledger, investigator)
    at(clock, date(2025, 6, 12))
    first, second = Scheduling(ledger), Scheduling(ledger)
    actions = first.due()
    assert len(first.run_due().recorded) == 2
    outcomes = [ledger.handle(a.command(), second.actor) for a in actions]  # a second scheduler that computed the same, a moment late
    assert all(o.duplicate for o in outcomes)


def test_a_corrected_end_of_treatment_moves_the_pending_windows(
    ledger: TrialLedger, clock: FixedClock, investigator: Actor, scheduling: Scheduling
) -> None:
    at(clock, date(2025, 3, 10))
    course(ledger, investigator)
    ended = next(e for e in patient_history(ledger, "P1")["entries"] if e["type"] == "TreatmentEnded")
    ledger.handle(CorrectEntry(patient_id="P1", entry_id=ended["entry_id"], changes={"ended_on": "2025-03-05"}, reason="EOT form misread"), investigator)
    follow_up = [a for a in scheduling.pending() if a.kind != "dlt_evaluation_completed"]
    assert [a.closed_on for a in follow_up] == [date(2025, 6, 11), date(2025, 9, 3), date(2025, 11, 26), date(2026, 2, 18), date(2026, 3, 5)]
    assert follow_up[0].command_id == "fu-missed:P1:1:2025-06-11"


def test_a_death_cancels_what_it_makes_moot_but_not_what_closed_before(
    ledger: TrialLedger, clock: FixedClock, investigator: Actor, scheduling: Scheduling
) -> None:
    at(clock, date(2025, 3, 10))
    course(ledger, investigator)
    at(clock, date(2025, 10, 1))
    ledger.handle(RecordDeath(patient_id="P1", died_on=date(2025, 10, 1)), investigator)
    assert kinds(scheduling.pending()) == [
        ("dlt_evaluation_completed", None, date(2025, 2, 2)),
        ("follow_up_missed", 1, date(2025, 6, 9)),
        ("follow_up_missed", 2, date(2025, 9, 1)),
    ]


def test_a_loss_to_follow_up_ends_the_schedule_and_the_patient_is_off_study(
    ledger: TrialLedger, clock: FixedClock, investigator: Actor, scheduling: Scheduling
) -> None:
    at(clock, date(2025, 3, 10))
    course(ledger, investigator)
    at(clock, date(2025, 7, 1))
    with pytest.raises(RuleViolations) as early:
        ledger.handle(RecordLostToFollowUp(patient_id="P1", lost_on=date(2025, 2, 1)), investigator)
    assert early.value.rule_id == "FU-WINDOW"
    ledger.handle(RecordLostToFollowUp(patient_id="P1", lost_on=date(2025, 7, 1)), investigator)
    assert [a.kind for a in scheduling.pending()] == ["dlt_evaluation_completed", "follow_up_missed"]  # visit 1 closed before
    doc = patient_document(ledger, "P1")
    assert doc["status"] == "OFF_STUDY" and doc["follow_up"]["next_due_on"] is None
    with pytest.raises(RuleViolations) as contact:
        ledger.handle(RecordFollowUp(patient_id="P1", contacted_on=date(2025, 7, 1), vital_status=VitalStatus.ALIVE), investigator)
    assert contact.value.rule_id == "FU-WINDOW"


def test_only_the_scheduler_records_what_time_makes_due_and_only_once_it_is_due(
    ledger: TrialLedger, clock: FixedClock, investigator: Actor, scheduling: Scheduling
) -> None:
    at(clock, date(2025, 3, 10))
    course(ledger, investigator)
    at(clock, date(2025, 6, 9))
    visit1 = RecordFollowUpMissed(patient_id="P1", visit=1, due_on=date(2025, 5, 26), window_closed_on=date(2025, 6, 9))
    with pytest.raises(CommandRefused) as by_user:
        ledger.handle(visit1, investigator)
    assert by_user.value.rule_id == "FU-SCHEDULE" and "scheduler" in str(by_user.value)
    with pytest.raises(CommandRefused) as early:
        ledger.handle(visit1, scheduling.actor)
    assert early.value.rule_id == "FU-SCHEDULE" and "2025-06-10" in str(early.value)
    with pytest.raises(CommandRefused) as wrong:
        ledger.handle(CompleteFollowUp(patient_id="P1", completed_on=date(2025, 6, 1)), scheduling.actor)
    assert wrong.value.rule_id == "FU-WINDOW"
    at(clock, date(2025, 6, 10))
    ledger.handle(visit1, scheduling.actor)
    with pytest.raises(CommandRefused) as twice:  # another id for what is recorded already
        ledger.handle(RecordFollowUpMissed(patient_id="P1", visit=1, due_on=date(2025, 5, 26), window_closed_on=date(2025, 6, 9), command_id="x"),
                      scheduling.actor)
    assert twice.value.rule_id == "FU-SCHEDULE"
