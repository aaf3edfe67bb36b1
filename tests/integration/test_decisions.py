"""Decision provenance: a 3+3 decision whose basis later changed is flagged."""

from __future__ import annotations

from datetime import date, timedelta

from ledger.application import TrialLedger
from ledger.clock import FixedClock
from ledger.commands import CorrectEntry, DecideEscalation, EnrollPatient, ReportToxicity, StartCycle
from ledger.domain.values import Actor, Attribution, Decision, Phase
from ledger.interfaces.documents import DecisionsDocument
from ledger.provenance import decisions_document

START = date(2016, 1, 4)
DECIDED = START + timedelta(days=35)


def cohort_escalated(ledger: TrialLedger, investigator: Actor, clock: FixedClock, grade: int = 1) -> str:
    """Three patients at 300 mg, a toxicity of ``grade`` for P2 in cycle 1, ESCALATE decided; the toxicity's id."""
    tox = ""
    for n in (1, 2, 3):
        ledger.handle(
            EnrollPatient(patient_id=f"P{n}", enrolled_on=START, diagnosis="PH_POS_ALL", phase=Phase.I, cd22_percent=60.0, abl_mutations=[], bsa_m2=1.8),
            investigator,
        )
        ledger.handle(StartCycle(patient_id=f"P{n}", cycle=1, started_on=START), investigator)
    tox = ledger.handle(
        ReportToxicity(patient_id="P2", onset_on=START + timedelta(days=5), term="Rash", grade=grade, attribution=Attribution.POSSIBLE), investigator
    ).entry_ids[0]
    clock.advance(days=1)
    ledger.handle(DecideEscalation(stratum="default", decided_on=DECIDED, dose_mg=300, decision=Decision.ESCALATE), investigator)
    clock.advance(days=30)
    return tox


def test_a_decision_whose_facts_still_hold_is_not_flagged(ledger: TrialLedger, investigator: Actor, clock: FixedClock) -> None:
    cohort_escalated(ledger, investigator, clock)
    [decision] = decisions_document(ledger)["decisions"]
    assert decision["decision"] == "ESCALATE" and decision["recorded_by"] == investigator.user
    assert decision["recommended_then"] == decision["recommended_now"] == "ESCALATE"
    assert decision["basis_changed"] is False
    assert len(decision["basis"]) == 6  # three enrollments and three cycle-1 starts


def test_a_late_back_dated_dlt_flags_the_decision_it_would_have_changed(ledger: TrialLedger, investigator: Actor, clock: FixedClock) -> None:
    cohort_escalated(ledger, investigator, clock)
    late = ledger.handle(
        ReportToxicity(patient_id="P3", onset_on=START + timedelta(days=12), term="ALT increased", grade=3, attribution=Attribution.PROBABLE),
        investigator,
    ).entry_ids[0]
    [decision] = decisions_document(ledger)["decisions"]
    assert decision["recommended_then"] == "ESCALATE"
    assert decision["recommended_now"] == "EXPAND"
    assert decision["basis_changed"] is True
    assert late in decision["basis_now"] and late not in decision["basis"]


def test_a_corrected_grade_that_makes_a_dlt_flags_the_decision(ledger: TrialLedger, investigator: Actor, clock: FixedClock) -> None:
    tox = cohort_escalated(ledger, investigator, clock, grade=2)
    ledger.handle(CorrectEntry(patient_id="P2", entry_id=tox, changes={"grade": 3}, reason="source document verification"), investigator)
    [decision] = decisions_document(ledger, "default")["decisions"]
    assert decision["recommended_now"] == "EXPAND" and decision["basis_changed"] is True
    assert tox in decision["basis_now"]


def test_the_decisions_document_has_the_contract_keys(ledger: TrialLedger, investigator: Actor, clock: FixedClock) -> None:
    cohort_escalated(ledger, investigator, clock)
    dumped = DecisionsDocument().dump(decisions_document(ledger))
    keys = {"entry_id", "stratum", "dose_mg", "decision", "mtd_mg", "decided_on", "recorded_at", "recorded_by", "basis",
            "recommended_then", "recommended_now", "basis_changed"}
    assert keys <= set(dumped["decisions"][0])
    assert dumped["decisions"][0]["decided_on"] == DECIDED.isoformat()
