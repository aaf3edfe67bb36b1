"""Read models: maintained exactly once, and rebuilt identically, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ledger.application import TrialLedger
from ledger.clock import FixedClock
from ledger.commands import (
    CorrectEntry,
    RecordInoInfusion,
    ReportToxicity,
    StartCycle,
    VoidEntry,
)
from ledger.demo import run_demo
from ledger.domain.values import Actor, Attribution
from ledger.interfaces.importer import import_file
from ledger.projections.projector import Projector
from ledger.projections.queries import audit_trail, trial_summary
from ledger.projections.tables import TABLES, read_model_tables

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"
D = date.fromisoformat


def dump(ledger: TrialLedger) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model table's rows, sorted, for row-for-row comparison."""
    tables = read_model_tables()
    with ledger.engine.connect() as connection:
        return {
            name: sorted(tuple(row) for row in connection.execute(select(tables[name])))
            for names in TABLES.values()
            for name in names
        }


def scenario(ledger: TrialLedger, actor: Actor, clock: FixedClock, after_each: Projector) -> None:
    """The example patient, a back-dated toxicity, a correction, a void and a deviation; catch-up after each."""
    import_file(ledger, EXAMPLE, actor, batch_size=5, on_line=lambda *_: after_each.catch_up())
    clock.advance(days=100)
    tox = ledger.handle(
        ReportToxicity(patient_id="S001", onset_on=D("2016-02-10"), term="Rash", grade=2, attribution=Attribution.POSSIBLE), actor
    ).entry_ids[0]
    after_each.catch_up()
    ledger.handle(CorrectEntry(patient_id="S001", entry_id=tox, changes={"grade": 3, "onset_on": "2016-02-11"}, reason="lab report"), actor)
    after_each.catch_up()
    dose = patient_dose_entry(ledger)
    ledger.handle(VoidEntry(patient_id="S001", entry_id=dose, reason="entered twice on paper"), actor)
    ledger.handle(
        RecordInoInfusion(patient_id="S001", given_on=D("2016-03-08"), dose_mg_m2=0.5, deviation=True, reason="investigator's decision"), actor
    )
    ledger.handle(StartCycle(patient_id="S001", cycle=3, started_on=D("2016-03-29")), actor)
    after_each.catch_up()


def patient_dose_entry(ledger: TrialLedger) -> str:
    return next(e.entry_id for e in ledger.load_patient("S001").entries if e.kind == "BosutinibDoseRecorded")


def test_rebuilt_read_models_equal_the_incrementally_maintained_ones(ledger: TrialLedger, investigator: Actor, clock: FixedClock) -> None:
    projector = Projector(ledger, batch=3)
    scenario(ledger, investigator, clock, projector)
    incremental = dump(ledger)
    assert len(incremental["rm_audit_trail"]) == (ledger.recorder.max_notification_id() or 0) + 1  # the correction changed 2 fields
    assert incremental["rm_patients"] and incremental["rm_toxicities"] and incremental["rm_dose_exposure"]
    Projector(ledger).rebuild()
    assert dump(ledger) == incremental


def test_the_demo_trial_rebuilds_identically(ledger: TrialLedger, clock: FixedClock) -> None:
    assert run_demo(ledger, io.StringIO()) == 0
    Projector(ledger, batch=97).catch_up()
    incremental = dump(ledger)
    assert len(incremental["rm_patients"]) == 16 and len(incremental["rm_escalation_decisions"]) == 4
    Projector(ledger, batch=500).rebuild()
    assert dump(ledger) == incremental


def test_catch_up_applies_each_event_once(ledger: TrialLedger, investigator: Actor) -> None:
    import_file(ledger, EXAMPLE, investigator)
    projector = Projector(ledger)
    assert projector.catch_up() == 2 * 39  # both projections, every event
    assert projector.catch_up() == 0
    assert projector.position("audit_trail") == projector.position("patients") == ledger.recorder.max_notification_id()
    ledger.handle(StartCycle(patient_id="S001", cycle=3, started_on=D("2016-03-29")), investigator)
    assert projector.catch_up() == 2
    assert len(audit_trail(ledger)["entries"]) == 40


def test_the_audit_trail_shows_old_and_new_value_per_corrected_field(ledger: TrialLedger, investigator: Actor, clock: FixedClock) -> None:
    projector = Projector(ledger)
    scenario(ledger, investigator, clock, projector)
    rows = [r for r in audit_trail(ledger, patient_id="S001")["entries"] if r["event_type"] == "EntryCorrected"]
    assert [(r["field"], r["old_value"], r["new_value"]) for r in rows] == [("grade", "2", "3"), ("onset_on", "2016-02-10", "2016-02-11")]
    assert {r["reason"] for r in rows} == {"lab report"} and {r["recorded_by"] for r in rows} == {investigator.user}
    before = audit_trail(ledger, as_of=clock.now() - timedelta(days=50))["entries"]
    assert before and all(r["event_type"] != "EntryCorrected" for r in before)


def test_the_trial_summary_counts_patients_statuses_and_responses(ledger: TrialLedger, clock: FixedClock) -> None:
    run_demo(ledger, io.StringIO())
    Projector(ledger).catch_up()
    early = trial_summary(ledger, valid_on=D("2015-02-01"))
    assert early["patients"] == 3 and early["status"] == {"ON_TREATMENT": 3}
    late = trial_summary(ledger, valid_on=D("2020-01-01"))
    assert late["patients"] == 16
    assert {e["phase"]: e["patients"] for e in late["enrolled"]} == {"I": 12, "II": 4}
    assert sum(late["status"].values()) == 16 and "ON_TREATMENT" not in late["status"]
    assert sum(late["best_response"].values()) == 16


def test_escalation_levels_from_the_read_models_match_the_replayed_escalation(ledger: TrialLedger) -> None:
    from ledger.projections.queries import escalation_levels
    from ledger.queries import escalation_document

    run_demo(ledger, io.StringIO())
    Projector(ledger).catch_up()
    for on in ("2015-01-20", "2015-02-26", "2015-03-25", "2015-04-16", "2015-06-04", "2015-06-30", "2015-07-23", "2016-06-01"):
        replayed = escalation_document(ledger, "default", valid_on=D(on))["strata"][0]["levels"]
        assert escalation_levels(ledger, "default", D(on)) == replayed, on
