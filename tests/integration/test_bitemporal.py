"""As-of (transaction time) and valid-on (clinical time) on patient, escalation, trial summary and
audit trail, on a scenario with back-dated and corrected entries, on SQLite and PostgreSQL.

The story: three phase I patients start cycle 1 in January 2016 (recorded on day 0). On day 30
a grade 2 rash of P1 is recorded; on day 90 a grade 3 ALT increase of P2 with onset in January
is recorded (back-dated: a DLT); on day 120 P1's rash is corrected to grade 3 (a second DLT) and
P3's death on 2016-03-15 is recorded.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from ledger.application import TrialLedger
from ledger.clock import FixedClock
from ledger.commands import CorrectEntry, EnrollPatient, RecordDeath, ReportToxicity, StartCycle
from ledger.domain.values import Actor, Attribution, Phase
from ledger.errors import CommandRefused
from ledger.projections.projector import Projector
from ledger.projections.queries import audit_trail, trial_summary
from ledger.queries import escalation_document, patient_document

START = date(2016, 1, 4)
LATE = date(2016, 12, 31)


class Story:
    def __init__(self, ledger: TrialLedger, actor: Actor, clock: FixedClock) -> None:
        self.day0 = clock.now()
        for n in (1, 2, 3):
            ledger.handle(
                EnrollPatient(patient_id=f"P{n}", enrolled_on=START, diagnosis="PH_POS_ALL", phase=Phase.I, cd22_percent=60.0, abl_mutations=[], bsa_m2=1.8),
                actor,
            )
            ledger.handle(StartCycle(patient_id=f"P{n}", cycle=1, started_on=START), actor)
        clock.advance(days=30)
        self.rash = ledger.handle(
            ReportToxicity(patient_id="P1", onset_on=START + timedelta(days=3), term="Rash", grade=2, attribution=Attribution.POSSIBLE), actor
        ).entry_ids[0]
        clock.advance(days=60)
        self.alt = ledger.handle(
            ReportToxicity(patient_id="P2", onset_on=START + timedelta(days=10), term="ALT increased", grade=3, attribution=Attribution.PROBABLE), actor
        ).entry_ids[0]
        clock.advance(days=30)
        ledger.handle(CorrectEntry(patient_id="P1", entry_id=self.rash, changes={"grade": 3}, reason="lab report"), actor)
        ledger.handle(RecordDeath(patient_id="P3", died_on=date(2016, 3, 15), cause="infection"), actor)
        clock.advance(days=1)
        Projector(ledger).catch_up()

    def day(self, n: float) -> datetime:
        return self.day0 + timedelta(days=n)


@pytest.fixture
def story(ledger: TrialLedger, investigator: Actor, clock: FixedClock) -> Story:
    return Story(ledger, investigator, clock)


def test_patient_state_on_both_axes(ledger: TrialLedger, story: Story) -> None:
    assert patient_document(ledger, "P2", as_of=story.day(60), valid_on=LATE)["toxicities"] == []  # not yet recorded
    assert patient_document(ledger, "P2", valid_on=START + timedelta(days=9))["toxicities"] == []  # recorded, not yet begun
    now = patient_document(ledger, "P2", valid_on=START + timedelta(days=10))
    assert now["dlt"] is True and now["toxicities"][0]["entry_id"] == story.alt
    assert patient_document(ledger, "P1", as_of=story.day(100), valid_on=LATE)["toxicities"][0]["grade"] == 2  # before the correction
    assert patient_document(ledger, "P1", valid_on=LATE)["toxicities"][0]["grade"] == 3
    with pytest.raises(CommandRefused) as refusal:
        patient_document(ledger, "P1", as_of=story.day(-1))
    assert refusal.value.rule_id == "PATIENT-UNKNOWN"


def test_escalation_on_both_axes(ledger: TrialLedger, story: Story) -> None:
    def level(as_of: datetime | None, valid_on: date) -> dict:  # type: ignore[type-arg]
        stratum = escalation_document(ledger, as_of=as_of, valid_on=valid_on)["strata"][0]
        return {**stratum["levels"][0], "next_action": stratum["next_action"]}

    assert level(story.day(60), LATE) == {"dose_mg": 300, "patients": 3, "evaluable": 3, "dlts": 0, "decision": None, "next_action": "ESCALATE"}
    assert level(story.day(100), LATE)["dlts"] == 1 and level(story.day(100), LATE)["next_action"] == "EXPAND"
    assert level(None, LATE)["dlts"] == 2 and level(None, LATE)["next_action"] == "STOP"  # too toxic at the lowest level
    assert level(None, START + timedelta(days=5))["next_action"] == "AWAIT_DLT_EVALUATION"  # windows still open, no DLT yet
    assert escalation_document(ledger, as_of=story.day(-1))["strata"] == []


def test_trial_summary_on_both_axes(ledger: TrialLedger, story: Story) -> None:
    assert trial_summary(ledger, valid_on=LATE)["status"] == {"DEAD": 1, "ON_TREATMENT": 2}
    assert trial_summary(ledger, valid_on=date(2016, 3, 14))["status"] == {"ON_TREATMENT": 3}
    assert trial_summary(ledger, valid_on=LATE, as_of=story.day(100))["status"] == {"ON_TREATMENT": 3}  # death not yet recorded
    assert trial_summary(ledger, valid_on=START - timedelta(days=1), as_of=story.day(100))["patients"] == 0
    from_read_models = trial_summary(ledger, valid_on=LATE)
    from_courses = trial_summary(ledger, valid_on=LATE, as_of=story.day(1000))
    assert {k: v for k, v in from_read_models.items() if k != "as_of"} == {k: v for k, v in from_courses.items() if k != "as_of"}


def test_audit_trail_on_both_axes(ledger: TrialLedger, story: Story) -> None:
    everything = audit_trail(ledger)["entries"]
    early = audit_trail(ledger, as_of=story.day(60))["entries"]
    assert story.alt not in {r["entry_id"] for r in early} and story.rash in {r["entry_id"] for r in early}
    assert len(early) < len(everything)
    january = audit_trail(ledger, valid_on=START + timedelta(days=9))["entries"]
    assert story.alt not in {r["entry_id"] for r in january} and story.rash in {r["entry_id"] for r in january}
    corrections = [r for r in everything if r["event_type"] == "EntryCorrected"]
    assert [(r["field"], r["old_value"], r["new_value"], r["amends_entry_id"]) for r in corrections] == [("grade", "2", "3", story.rash)]
