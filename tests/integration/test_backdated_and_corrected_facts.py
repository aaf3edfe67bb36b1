"""A back-dated fact or a correction may not contradict what is already recorded.

Each change is checked itself, and every fact already recorded on or after its date is
checked again against the course as it would then be; a conflict is refused, naming the
rule and the entry it would break, unless recorded as an acknowledged deviation.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ledger.application import TrialLedger
from ledger.clock import FixedClock
from ledger.commands import (
    AssessResponse,
    CorrectEntry,
    DecideEscalation,
    EnrollPatient,
    ModifyBosutinibDose,
    RecordBosutinibDose,
    RecordDeath,
    RecordInoInfusion,
    ReportToxicity,
    ResolveToxicity,
    StartCycle,
    VoidEntry,
)
from ledger.domain.values import Actor, Attribution, Decision, Phase, Response
from ledger.errors import CommandRefused, RuleViolations
from ledger.queries import escalation_document, patient_document

D = date.fromisoformat
C1 = D("2016-02-02")
C2 = D("2016-03-01")


def enroll(ledger: TrialLedger, actor: Actor, pid: str = "P1", on: str = "2016-02-01") -> None:
    ledger.handle(
        EnrollPatient(patient_id=pid, enrolled_on=D(on), diagnosis="PH_POS_ALL", phase=Phase.I, cd22_percent=60.0, abl_mutations=[], bsa_m2=1.8),
        actor,
    )


def two_cycles(ledger: TrialLedger, actor: Actor) -> dict[str, str]:
    """Cycle 1 with doses on days 1-3 and InO on day 1; cycle 2 with InO on days 1 and 8."""
    enroll(ledger, actor)
    ids = {"c1": ledger.handle(StartCycle(patient_id="P1", cycle=1, started_on=C1), actor).entry_ids[0]}
    for day in range(3):
        ledger.handle(RecordBosutinibDose(patient_id="P1", taken_on=C1 + timedelta(days=day), dose_mg=300), actor)
    ledger.handle(RecordInoInfusion(patient_id="P1", given_on=C1, dose_mg_m2=0.8), actor)
    ids["c2"] = ledger.handle(StartCycle(patient_id="P1", cycle=2, started_on=C2), actor).entry_ids[0]
    ledger.handle(RecordInoInfusion(patient_id="P1", given_on=C2, dose_mg_m2=0.8), actor)
    ids["c2d8"] = ledger.handle(RecordInoInfusion(patient_id="P1", given_on=C2 + timedelta(days=7), dose_mg_m2=0.5), actor).entry_ids[0]
    return ids


def events(ledger: TrialLedger) -> int:
    return ledger.recorder.max_notification_id() or 0


def refused(ledger: TrialLedger, actor: Actor, command: object) -> RuleViolations:
    before = events(ledger)
    with pytest.raises(RuleViolations) as refusal:
        ledger.handle(command, actor)  # type: ignore[arg-type]
    assert events(ledger) == before
    return refusal.value


def test_a_back_dated_response_that_would_make_recorded_day_8_ino_break_the_rules_is_refused(ledger: TrialLedger, investigator: Actor) -> None:
    ids = two_cycles(ledger, investigator)
    refusal = refused(ledger, investigator, AssessResponse(patient_id="P1", assessed_on=D("2016-02-25"), response=Response.CR))
    assert {"INO-DAY1-ONLY", "INO-DOSE"} <= {v.rule_id for v in refusal.violations}
    assert any(ids["c2d8"] in v.message for v in refusal.violations)  # names the entry it would break
    # recorded as a deviation it stands, with the broken rules named
    outcome = ledger.handle(
        AssessResponse(patient_id="P1", assessed_on=D("2016-02-25"), response=Response.CR, deviation=True, reason="assessment found late"), investigator
    )
    assert "INO-DAY1-ONLY" in {v.rule_id for v in outcome.deviations}


def test_a_back_dated_dose_reduction_before_recorded_doses_is_refused(ledger: TrialLedger, investigator: Actor) -> None:
    two_cycles(ledger, investigator)
    refusal = refused(ledger, investigator, ModifyBosutinibDose(patient_id="P1", effective_on=C1 + timedelta(days=1), dose_mg=200, reason="rash"))
    assert [v.rule_id for v in refusal.violations] == ["BOS-DOSE", "BOS-DOSE"]  # the doses of days 2 and 3


def test_moving_the_enrollment_after_recorded_treatment_is_refused(ledger: TrialLedger, investigator: Actor) -> None:
    two_cycles(ledger, investigator)
    enrollment = ledger.load_patient("P1").entries[0].entry_id
    refusal = refused(ledger, investigator, CorrectEntry(patient_id="P1", entry_id=enrollment, changes={"enrolled_on": "2016-03-01"}, reason="typo"))
    assert "TREAT-WINDOW" in {v.rule_id for v in refusal.violations}


def test_a_cycle_start_corrected_past_its_recorded_doses_is_refused(ledger: TrialLedger, investigator: Actor) -> None:
    ids = two_cycles(ledger, investigator)
    refusal = refused(ledger, investigator, CorrectEntry(patient_id="P1", entry_id=ids["c1"], changes={"started_on": "2016-02-04"}, reason="typo"))
    assert {"BOS-DAILY", "INO-DAYS"} <= {v.rule_id for v in refusal.violations}


def test_an_earlier_cycle_can_be_corrected_when_nothing_recorded_contradicts_it(ledger: TrialLedger, investigator: Actor) -> None:
    enroll(ledger, investigator)
    c1 = ledger.handle(StartCycle(patient_id="P1", cycle=1, started_on=C1), investigator).entry_ids[0]
    ledger.handle(StartCycle(patient_id="P1", cycle=2, started_on=C2 + timedelta(days=5)), investigator)
    ledger.handle(CorrectEntry(patient_id="P1", entry_id=c1, changes={"started_on": "2016-02-03"}, reason="typo"), investigator)
    assert patient_document(ledger, "P1", valid_on=D("2016-03-10"))["cycle"] == 2


def test_a_toxicity_onset_corrected_past_its_resolution_is_refused(ledger: TrialLedger, investigator: Actor) -> None:
    enroll(ledger, investigator)
    tox = ledger.handle(ReportToxicity(patient_id="P1", onset_on=D("2016-02-05"), term="Rash", grade=2, attribution=Attribution.POSSIBLE), investigator)
    ledger.handle(ResolveToxicity(patient_id="P1", toxicity_id=tox.entry_ids[0], resolved_on=D("2016-02-10")), investigator)
    refusal = refused(ledger, investigator, CorrectEntry(patient_id="P1", entry_id=tox.entry_ids[0], changes={"onset_on": "2016-02-20"}, reason="typo"))
    assert [v.rule_id for v in refusal.violations] == ["TOX-RESOLVED"]
    again = refused(ledger, investigator, ResolveToxicity(patient_id="P1", toxicity_id=tox.entry_ids[0], resolved_on=D("2016-02-12")))
    assert [v.rule_id for v in again.violations] == ["TOX-RESOLVED"]  # already resolved


def test_a_back_dated_phase_one_enrollment_cannot_overfill_a_cohort(ledger: TrialLedger, investigator: Actor) -> None:
    for n, on in ((1, "2016-01-10"), (2, "2016-01-20"), (3, "2016-02-01")):
        enroll(ledger, investigator, f"P{n}", on)
    before = events(ledger)
    with pytest.raises(RuleViolations) as refusal:
        enroll(ledger, investigator, "P5", "2016-01-15")
    assert refusal.value.rule_id == "ESC-COHORT" and events(ledger) == before
    assert escalation_document(ledger, valid_on=D("2016-03-01"))["strata"][0]["levels"][0]["patients"] == 3


def test_facts_dated_in_the_future_are_refused(ledger: TrialLedger, investigator: Actor, clock: FixedClock) -> None:
    enroll(ledger, investigator)
    ledger.handle(StartCycle(patient_id="P1", cycle=1, started_on=C1), investigator)
    future = clock.today() + timedelta(days=5)
    with pytest.raises(CommandRefused) as refusal:
        ledger.handle(RecordBosutinibDose(patient_id="P1", taken_on=future, dose_mg=300), investigator)
    assert refusal.value.rule_id == "DATE-FUTURE"
    with pytest.raises(CommandRefused) as decision:
        ledger.handle(DecideEscalation(stratum="default", decided_on=future, dose_mg=300, decision=Decision.ESCALATE), investigator)
    assert decision.value.rule_id == "DATE-FUTURE"


def test_a_death_on_the_day_of_a_recorded_dose_is_refused_as_the_dose_after_a_death_is(ledger: TrialLedger, investigator: Actor) -> None:
    enroll(ledger, investigator)
    ledger.handle(StartCycle(patient_id="P1", cycle=1, started_on=C1), investigator)
    ledger.handle(RecordBosutinibDose(patient_id="P1", taken_on=C1, dose_mg=300), investigator)
    refusal = refused(ledger, investigator, RecordDeath(patient_id="P1", died_on=C1))
    assert "TREAT-WINDOW" in {v.rule_id for v in refusal.violations}


def test_a_deviation_recorded_with_a_correction_goes_when_the_fact_is_voided(ledger: TrialLedger, investigator: Actor) -> None:
    enroll(ledger, investigator)
    ledger.handle(StartCycle(patient_id="P1", cycle=1, started_on=C1), investigator)
    dose = ledger.handle(RecordBosutinibDose(patient_id="P1", taken_on=C1, dose_mg=300), investigator).entry_ids[0]
    ledger.handle(CorrectEntry(patient_id="P1", entry_id=dose, changes={"dose_mg": 400}, reason="as given", deviation=True), investigator)
    assert patient_document(ledger, "P1", valid_on=C1)["deviations"] == 1
    ledger.handle(VoidEntry(patient_id="P1", entry_id=dose, reason="entered for the wrong patient"), investigator)
    doc = patient_document(ledger, "P1", valid_on=C1)
    assert doc["bosutinib_doses"] == 0 and doc["deviations"] == 0


def test_a_decision_dated_before_a_recorded_decision_is_refused(ledger: TrialLedger, investigator: Actor) -> None:
    for n in (1, 2, 3):
        enroll(ledger, investigator, f"P{n}", "2016-01-04")
        ledger.handle(StartCycle(patient_id=f"P{n}", cycle=1, started_on=D("2016-01-04")), investigator)
    ledger.handle(DecideEscalation(stratum="default", decided_on=D("2016-02-15"), dose_mg=300, decision=Decision.ESCALATE), investigator)
    refusal = refused(ledger, investigator, DecideEscalation(stratum="default", decided_on=D("2016-02-10"), dose_mg=300, decision=Decision.ESCALATE))
    assert "ESC-3PLUS3" in {v.rule_id for v in refusal.violations}
