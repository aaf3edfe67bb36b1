"""The write path against real databases: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from ledger.application import TrialLedger
from ledger.clock import FixedClock
from ledger.commands import (
    AssessResponse,
    CorrectEntry,
    EnrollPatient,
    RecordBosutinibDose,
    RecordInoInfusion,
    ReportToxicity,
    StartCycle,
    VoidEntry,
)
from ledger.domain.values import Actor, Attribution, Phase, Response
from ledger.errors import CommandRefused, InvalidCommand, RuleViolations
from ledger.interfaces.importer import import_file
from ledger.queries import patient_document, patient_history

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"
D = date.fromisoformat


def enroll(ledger: TrialLedger, actor: Actor, pid: str = "P001", on: str = "2016-02-01", **extra: object) -> None:
    fields = {
        "patient_id": pid, "enrolled_on": D(on), "diagnosis": "PH_POS_ALL", "phase": Phase.I,
        "cd22_percent": 60.0, "abl_mutations": [], "bsa_m2": 1.8, **extra,
    }
    ledger.handle(EnrollPatient(**fields), actor)  # type: ignore[arg-type]


def events(ledger: TrialLedger) -> int:
    return ledger.store.recorder.max_notification_id() or 0


def test_the_example_import_rebuilds_the_patient_the_example_describes(ledger: TrialLedger, investigator: Actor) -> None:
    report = import_file(ledger, EXAMPLE, investigator)
    assert report.ok and report.recorded == 37
    doc = patient_document(ledger, "S001", valid_on=D("2016-03-01"))
    assert doc["cycle"] == 2
    assert doc["bosutinib_doses"] == 28
    assert doc["ino_infusions"] == 4
    assert doc["ino_total_mg_m2"] == pytest.approx(2.8)
    assert doc["best_response"] == "CRi"
    assert doc["ino_schedule"] == "DAY_1_ONLY"
    assert doc["dose_level_mg"] == 300


def test_a_refused_command_records_nothing(ledger: TrialLedger, investigator: Actor) -> None:
    enroll(ledger, investigator)
    ledger.handle(StartCycle(patient_id="P001", cycle=1, started_on=D("2016-02-02")), investigator)
    before = events(ledger)
    with pytest.raises(RuleViolations) as refusal:
        ledger.handle(RecordInoInfusion(patient_id="P001", given_on=D("2016-02-04"), dose_mg_m2=0.5), investigator)
    assert refusal.value.rule_id == "INO-DAYS"
    assert events(ledger) == before


def test_a_deviation_stores_the_fact_and_names_the_rule(ledger: TrialLedger, investigator: Actor) -> None:
    enroll(ledger, investigator)
    ledger.handle(StartCycle(patient_id="P001", cycle=1, started_on=D("2016-02-02")), investigator)
    outcome = ledger.handle(
        RecordInoInfusion(patient_id="P001", given_on=D("2016-02-10"), dose_mg_m2=0.5, deviation=True, reason="clinic closed on day 8"),
        investigator,
    )
    assert [v.rule_id for v in outcome.deviations] == ["INO-DAYS"]
    history = patient_history(ledger, "P001")["entries"]
    kinds = [e["type"] for e in history]
    assert kinds[-2:] == ["InoInfusionRecorded", "ProtocolDeviationRecorded"]
    assert history[-1]["data"]["rule_id"] == "INO-DAYS"
    assert history[-1]["data"]["deviating_entry_id"] == history[-2]["entry_id"]
    assert history[-1]["reason"] == "clinic closed on day 8"
    assert patient_document(ledger, "P001", valid_on=D("2016-02-11"))["deviations"] == 1


def test_a_coordinator_cannot_acknowledge_a_deviation(ledger: TrialLedger, investigator: Actor, coordinator: Actor) -> None:
    enroll(ledger, investigator)
    ledger.handle(StartCycle(patient_id="P001", cycle=1, started_on=D("2016-02-02")), investigator)
    before = events(ledger)
    with pytest.raises(CommandRefused) as refusal:
        ledger.handle(
            RecordInoInfusion(patient_id="P001", given_on=D("2016-02-10"), dose_mg_m2=0.5, deviation=True, reason="late"), coordinator
        )
    assert refusal.value.rule_id == "DEVIATION"
    assert events(ledger) == before


def test_a_resent_command_id_is_acknowledged_and_records_nothing(ledger: TrialLedger, investigator: Actor) -> None:
    enroll(ledger, investigator)
    cmd = StartCycle(patient_id="P001", cycle=1, started_on=D("2016-02-02"), command_id="C1-P001")
    first = ledger.handle(cmd, investigator)
    before = events(ledger)
    again = ledger.handle(cmd, investigator)
    assert again.duplicate and again.entry_ids == first.entry_ids
    assert events(ledger) == before


def test_a_correction_keeps_the_original_and_changes_the_state_at_the_entrys_valid_time(
    ledger: TrialLedger, investigator: Actor, clock: FixedClock
) -> None:
    enroll(ledger, investigator)
    ledger.handle(StartCycle(patient_id="P001", cycle=1, started_on=D("2016-02-02")), investigator)
    tox = ledger.handle(
        ReportToxicity(patient_id="P001", onset_on=D("2016-02-10"), term="Rash", grade=2, attribution=Attribution.POSSIBLE), investigator
    ).entry_ids[0]
    before_correction = clock.now()
    clock.advance(days=30)
    ledger.handle(CorrectEntry(patient_id="P001", entry_id=tox, changes={"grade": 3}, reason="source document verification"), investigator)

    now = patient_document(ledger, "P001", valid_on=D("2016-02-12"))
    assert now["toxicities"][0]["grade"] == 3 and now["dlt"] is True
    then = patient_document(ledger, "P001", valid_on=D("2016-02-12"), as_of=before_correction)
    assert then["toxicities"][0]["grade"] == 2 and then["dlt"] is False
    history = patient_history(ledger, "P001")["entries"]
    original = next(e for e in history if e["entry_id"] == tox)
    assert original["data"]["grade"] == 2
    correction = history[-1]
    assert correction["type"] == "EntryCorrected"
    assert correction["data"]["old_values"] == {"grade": 2} and correction["data"]["changes"] == {"grade": 3}


def test_a_correction_must_itself_satisfy_the_rules(ledger: TrialLedger, investigator: Actor) -> None:
    enroll(ledger, investigator)
    ledger.handle(StartCycle(patient_id="P001", cycle=1, started_on=D("2016-02-02")), investigator)
    ino = ledger.handle(RecordInoInfusion(patient_id="P001", given_on=D("2016-02-02"), dose_mg_m2=0.8), investigator).entry_ids[0]
    before = events(ledger)
    with pytest.raises(RuleViolations) as refusal:
        ledger.handle(CorrectEntry(patient_id="P001", entry_id=ino, changes={"dose_mg_m2": 1.2}, reason="typo"), investigator)
    assert refusal.value.rule_id == "INO-DOSE"
    with pytest.raises(InvalidCommand) as invalid:
        ledger.handle(CorrectEntry(patient_id="P001", entry_id=ino, changes={"dose_mg_m2": "lots"}, reason="typo"), investigator)
    assert "changes.dose_mg_m2" in invalid.value.errors
    assert events(ledger) == before


def test_a_voided_entry_counts_as_never_having_happened_from_the_void_on(
    ledger: TrialLedger, investigator: Actor, clock: FixedClock
) -> None:
    enroll(ledger, investigator)
    ledger.handle(StartCycle(patient_id="P001", cycle=1, started_on=D("2016-02-02")), investigator)
    dose = ledger.handle(RecordBosutinibDose(patient_id="P001", taken_on=D("2016-02-02"), dose_mg=300), investigator).entry_ids[0]
    before_void = clock.now()
    clock.advance(hours=1)
    ledger.handle(VoidEntry(patient_id="P001", entry_id=dose, reason="entered for the wrong patient"), investigator)
    assert patient_document(ledger, "P001", valid_on=D("2016-02-03"))["bosutinib_doses"] == 0
    assert patient_document(ledger, "P001", valid_on=D("2016-02-03"), as_of=before_void)["bosutinib_doses"] == 1
    with pytest.raises(CommandRefused) as refusal:
        ledger.handle(VoidEntry(patient_id="P001", entry_id=dose, reason="again"), investigator)
    assert refusal.value.rule_id == "ENTRY-TARGET"
    # the day is free again: the dose can be recorded anew
    ledger.handle(RecordBosutinibDose(patient_id="P001", taken_on=D("2016-02-02"), dose_mg=300), investigator)


def test_a_back_dated_toxicity_shows_on_both_time_axes(ledger: TrialLedger, investigator: Actor, clock: FixedClock) -> None:
    enroll(ledger, investigator, on="2016-03-01")
    ledger.handle(StartCycle(patient_id="P001", cycle=1, started_on=D("2016-03-02")), investigator)
    recorded_before = clock.now()
    clock.advance(days=90)  # entered in June ...
    ledger.handle(
        ReportToxicity(patient_id="P001", onset_on=D("2016-03-10"), term="ALT increased", grade=3, attribution=Attribution.PROBABLE),
        investigator,
    )  # ... with onset in March
    assert patient_document(ledger, "P001", valid_on=D("2016-03-09"))["toxicities"] == []
    assert patient_document(ledger, "P001", valid_on=D("2016-03-10"))["dlt"] is True
    assert patient_document(ledger, "P001", valid_on=D("2016-03-10"), as_of=recorded_before)["toxicities"] == []


def test_every_entry_is_indexed_with_its_position_in_commit_order(ledger: TrialLedger, investigator: Actor) -> None:
    import_file(ledger, EXAMPLE, investigator)
    positions = [e["position"] for e in patient_history(ledger, "S001")["entries"]]
    assert None not in positions
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


def test_a_response_on_the_last_day_of_a_cycle_switches_the_next_cycle_to_day_one_only(ledger: TrialLedger, investigator: Actor) -> None:
    enroll(ledger, investigator)
    ledger.handle(StartCycle(patient_id="P001", cycle=1, started_on=D("2016-02-02")), investigator)
    ledger.handle(AssessResponse(patient_id="P001", assessed_on=D("2016-02-29"), response=Response.CR), investigator)
    ledger.handle(StartCycle(patient_id="P001", cycle=2, started_on=D("2016-03-01")), investigator)
    with pytest.raises(RuleViolations) as refusal:
        ledger.handle(RecordInoInfusion(patient_id="P001", given_on=D("2016-03-01"), dose_mg_m2=0.8), investigator)
    assert refusal.value.rule_id == "INO-DOSE"
    ledger.handle(RecordInoInfusion(patient_id="P001", given_on=D("2016-03-01"), dose_mg_m2=1.0), investigator)
    with pytest.raises(RuleViolations) as day8:
        ledger.handle(RecordInoInfusion(patient_id="P001", given_on=D("2016-03-01") + timedelta(days=7), dose_mg_m2=0.5), investigator)
    assert "INO-DAY1-ONLY" in [v.rule_id for v in day8.value.violations]


def test_enrolling_a_patient_twice_is_refused(ledger: TrialLedger, investigator: Actor) -> None:
    enroll(ledger, investigator)
    with pytest.raises(CommandRefused) as refusal:
        enroll(ledger, investigator)
    assert refusal.value.rule_id == "PATIENT-ENROLLED"


def test_a_command_for_an_unknown_patient_is_refused(ledger: TrialLedger, investigator: Actor) -> None:
    with pytest.raises(CommandRefused) as refusal:
        ledger.handle(StartCycle(patient_id="NOPE", cycle=1, started_on=D("2016-02-02")), investigator)
    assert refusal.value.rule_id == "PATIENT-UNKNOWN"
    assert events(ledger) == 0


def test_the_import_report_names_the_refused_line_and_keeps_earlier_lines(ledger: TrialLedger, investigator: Actor, tmp_path: Path) -> None:
    lines = EXAMPLE.read_text().splitlines()[:3]
    lines.insert(2, json.dumps({"command": "start_cycle", "patient_id": "S001", "cycle": 7, "started_on": "2016-02-03"}))
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = import_file(ledger, path, investigator)
    assert report.stopped_at == 3
    assert report.problems[0].line == 3 and "CYCLE-CAP" in report.problems[0].message
    assert report.recorded == 2
    kept_going = import_file(ledger, path, investigator, keep_going=True)
    assert [p.line for p in kept_going.problems] == [3]  # lines 1 and 2 are known by their derived ids
    assert kept_going.duplicates == 2 and kept_going.recorded == 1


def test_an_import_run_again_or_grown_records_only_the_lines_it_has_not_recorded(ledger: TrialLedger, investigator: Actor, tmp_path: Path) -> None:
    lines = [line for line in EXAMPLE.read_text().splitlines() if "command_id" not in line]
    path = tmp_path / "site-export.jsonl"
    path.write_text("\n".join(lines[:10]))  # no newline after the last line yet
    first = import_file(ledger, path, investigator)
    assert first.recorded == 10
    before = events(ledger)
    again = import_file(ledger, path, investigator)
    assert (again.duplicates, again.recorded, events(ledger)) == (10, 0, before)
    path.write_text("\n".join(lines[:14]) + "\n")  # the site's export has grown by four lines
    grown = import_file(ledger, path, investigator)
    assert (grown.duplicates, grown.recorded) == (10, 4)
    other_file = tmp_path / "other.jsonl"
    other_file.write_text("\n".join([*lines[14:16], lines[0]]) + "\n")  # another file: its lines are judged afresh
    judged = import_file(ledger, other_file, investigator, keep_going=True)
    assert judged.recorded == 2 and [p.line for p in judged.problems] == [3] and "PATIENT-ENROLLED" in judged.problems[0].message


def test_a_command_id_reused_for_a_different_command_is_refused(ledger: TrialLedger, investigator: Actor) -> None:
    enroll(ledger, investigator)
    ledger.handle(StartCycle(patient_id="P001", cycle=1, started_on=D("2016-02-02"), command_id="C-1"), investigator)
    before = events(ledger)
    with pytest.raises(CommandRefused) as refusal:
        ledger.handle(RecordBosutinibDose(patient_id="P001", taken_on=D("2016-02-02"), dose_mg=300, command_id="C-1"), investigator)
    assert refusal.value.rule_id == "COMMAND-ID"
    assert events(ledger) == before
