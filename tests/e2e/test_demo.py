"""``ledger demo``: a clearly labelled synthetic trial, recorded through the ordinary write path.

The recorded-demo tests run on every backend of the ``ledger`` fixture (SQLite, PostgreSQL);
the last one drives the real ``ledger demo`` command in a subprocess.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from ledger.application import TrialLedger
from ledger.commands import EnrollPatient
from ledger.demo import RESPONDER, SOURCE, run_demo
from ledger.domain.values import Actor, Phase
from ledger.queries import escalation_document, patient_document, patient_history

pytestmark = pytest.mark.slow


def recorded(ledger: TrialLedger) -> int:
    return ledger.store.recorder.max_notification_id() or 0


def test_the_demo_records_the_synthetic_trial_its_story_describes(ledger: TrialLedger) -> None:
    out = io.StringIO()

    # The demo runs on an empty database and says its data are synthetic.
    assert run_demo(ledger, out) == 0
    text = out.getvalue()
    assert "SYNTHETIC" in text.splitlines()[1]
    assert "CYCLE-CAP: patient D201 may receive at most 6 cycles" in text
    assert recorded(ledger) > 1500

    # Phase I: 0/3 at 300 mg, 1/6 at 400 mg, 2/3 at 500 mg: the MTD is 400 mg.
    (stratum,) = escalation_document(ledger)["strata"]
    assert (stratum["stratum"], stratum["status"], stratum["mtd_mg"]) == ("default", "MTD_DECLARED", 400)
    levels = [(lv["dose_mg"], lv["patients"], lv["evaluable"], lv["dlts"], lv["decision"]) for lv in stratum["levels"]]
    assert levels == [(300, 3, 3, 0, "ESCALATE"), (400, 6, 6, 1, "ESCALATE"), (500, 3, 3, 2, "MTD_DECLARED")]

    # The responder: six cycles, day-1-only InO after the cycle-1 response, then follow-up.
    ended = patient_document(ledger, RESPONDER)["treatment_ended_on"]
    assert isinstance(ended, date)
    doc = patient_document(ledger, RESPONDER, valid_on=ended + timedelta(days=200))
    assert doc["phase"] == "II" and doc["dose_level_mg"] == 400
    assert doc["status"] == "FOLLOW_UP"
    assert doc["cycle"] == 6
    assert doc["ino_schedule"] == "DAY_1_ONLY"
    assert doc["best_response"] == "CR" and doc["mrd_negative"] is True
    assert doc["bosutinib_doses"] == 6 * 28
    assert doc["ino_infusions"] == 3 + 5  # days 1, 8 (given on 9), 15; then day 1 of cycles 2-6
    assert doc["ino_total_mg_m2"] == pytest.approx(0.8 + 0.5 + 0.5 + 5 * 1.0)
    assert doc["end_reason"] == "COMPLETED"
    assert doc["deviations"] == 1
    assert doc["follow_up"]["visits"] == 2 and doc["follow_up"]["missed"] == 0

    # The corrected toxicity shows grade 3; the original entry (grade 2) stays in the ledger.
    (platelets,) = [t for t in doc["toxicities"] if t["term"] == "Platelet count decreased"]
    assert platelets["grade"] == 3 and platelets["dlt"] is False
    history = patient_history(ledger, RESPONDER)["entries"]
    original = next(e for e in history if e["entry_id"] == platelets["entry_id"])
    assert original["data"]["grade"] == 2
    (correction,) = [e for e in history if e["type"] == "EntryCorrected"]
    assert correction["data"]["amends_entry_id"] == platelets["entry_id"]
    assert correction["reason"] == "source document verification: grade 3 per lab report"
    assert correction["role"] == "investigator"
    (deviation,) = [e for e in history if e["type"] == "ProtocolDeviationRecorded"]
    assert deviation["data"]["rule_id"] == "INO-DAYS"
    assert {e["source"] for e in history} == {SOURCE}

    # A second run finds the database in use and records nothing.
    before = recorded(ledger)
    again = io.StringIO()
    assert run_demo(ledger, again) == 1
    assert "empty database" in again.getvalue()
    assert recorded(ledger) == before


def test_the_demo_refuses_a_database_that_already_holds_entries(ledger: TrialLedger, coordinator: Actor) -> None:
    enroll = EnrollPatient(
        patient_id="P001", enrolled_on=date(2016, 2, 1), diagnosis="PH_POS_ALL", phase=Phase.I, cd22_percent=60.0, abl_mutations=[], bsa_m2=1.8
    )
    ledger.handle(enroll, coordinator)
    before = recorded(ledger)
    out = io.StringIO()

    assert run_demo(ledger, out) == 1

    assert "needs an empty database" in out.getvalue()
    assert recorded(ledger) == before


def test_ledger_demo_command_records_the_demo_into_a_new_sqlite_file(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("ledger")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ledger.interfaces.cli"]
    env = {**os.environ, "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite'}"}

    result = subprocess.run([*command, "demo"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    assert "SYNTHETIC" in result.stdout
    assert "MTD_DECLARED" in result.stdout and "MTD 400" in result.stdout
