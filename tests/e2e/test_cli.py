"""The ``ledger`` command as a user drives it: real processes, real databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"
LEDGER = str(Path(sys.executable).parent / "ledger")

PATIENT_KEYS = {
    "patient_id", "phase", "stratum", "diagnosis", "status", "dose_level_mg", "current_dose_mg", "cycle",
    "bosutinib_doses", "ino_infusions", "ino_total_mg_m2", "ino_schedule", "best_response", "first_response_on",
    "mrd_negative", "toxicities", "dlt", "treatment_ended_on", "end_reason", "follow_up", "died_on", "deviations",
    "signatures", "entries", "as_of", "valid_on",
}


class Cli:
    def __init__(self, url: str, cwd: Path) -> None:
        self.env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_USER": "e2e.user", "LEDGER_ROLE": "investigator"}
        self.cwd = cwd

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([LEDGER, *args], env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=120)

    def json(self, *args: str) -> dict:  # type: ignore[type-arg]
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    return Cli(database_url, tmp_path)


@pytest.fixture
def imported(cli: Cli) -> Cli:
    done = cli("import", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    return cli


def test_import_then_patient_show_gives_the_contract_state(imported: Cli) -> None:
    doc = imported.json("patient", "show", "S001", "--valid-on", "2016-03-01")
    assert set(doc) == PATIENT_KEYS
    assert doc["cycle"] == 2 and doc["ino_schedule"] == "DAY_1_ONLY" and doc["best_response"] == "CRi"
    assert set(doc["follow_up"]) == {"visits", "missed", "next_due_on", "window_closes_on"}
    assert doc["valid_on"] == "2016-03-01"


def test_the_import_summary_counts_the_lines(cli: Cli) -> None:
    done = cli("import", str(EXAMPLE))
    assert done.returncode == 0
    assert "37 lines: 37 recorded" in done.stdout


def test_a_refused_command_exits_1_naming_the_rule_and_records_nothing(imported: Cli) -> None:
    before = len(imported.json("patient", "history", "S001")["entries"])
    done = imported("start-cycle", "S001", "--cycle", "7", "--started-on", "2016-03-29")
    assert done.returncode == 1
    assert "CYCLE-CAP" in done.stderr
    assert len(imported.json("patient", "history", "S001")["entries"]) == before


def test_an_invalid_command_exits_1_naming_the_field(imported: Cli) -> None:
    done = imported("record-ino-infusion", "S001", "--given-on", "2016-03-08", "--dose-mg-m2", "plenty")
    assert done.returncode == 1
    assert "dose_mg_m2" in done.stderr


def test_a_missing_field_is_a_validation_error_not_a_usage_error(imported: Cli) -> None:
    done = imported("record-bosutinib-dose", "S001", "--taken-on", "2016-03-02")
    assert done.returncode == 1
    assert "dose_mg" in done.stderr


def test_a_usage_error_exits_2(cli: Cli) -> None:
    assert cli("no-such-command").returncode == 2
    assert cli("patient", "show", "S001", "--valid-on", "yesterday").returncode == 2


def test_a_deviation_is_recorded_with_its_rule(imported: Cli) -> None:
    done = imported(
        "record-ino-infusion", "S001", "--given-on", "2016-03-08", "--dose-mg-m2", "0.5", "--deviation", "--reason", "investigator's decision"
    )
    assert done.returncode == 0, done.stderr
    assert "INO-DAY1-ONLY" in done.stdout
    assert imported.json("patient", "show", "S001", "--valid-on", "2016-03-09")["deviations"] == 2  # day-1-only and dose


def test_a_correction_from_the_cli_changes_the_grade_and_keeps_the_original(imported: Cli) -> None:
    history = imported.json("patient", "history", "S001")["entries"]
    tox = next(e for e in history if e["type"] == "ToxicityReported")
    done = imported("correct-entry", "S001", "--entry-id", tox["entry_id"], "--set", "grade=2", "--reason", "lab report")
    assert done.returncode == 0, done.stderr
    doc = imported.json("patient", "show", "S001", "--valid-on", "2016-03-01")
    assert doc["toxicities"][0]["grade"] == 2
    entries = imported.json("patient", "history", "S001")["entries"]
    assert entries[-1]["type"] == "EntryCorrected" and entries[-1]["reason"] == "lab report"
    assert entries[-1]["recorded_by"] == "e2e.user" and entries[-1]["role"] == "investigator"


def test_a_rerun_import_with_command_ids_records_only_what_is_missing(cli: Cli, tmp_path: Path) -> None:
    lines = [json.loads(line) for line in EXAMPLE.read_text().splitlines()]
    for number, line in enumerate(lines):
        line["command_id"] = f"example-{number}"
    path = tmp_path / "with-ids.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines[:10]) + "\n")
    assert cli("import", str(path)).returncode == 0
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    report = json.loads(cli("import", str(path), "--json").stdout)
    assert report["duplicates"] == 10 and report["recorded"] == 27 and report["problems"] == []


def test_import_reports_line_numbers_and_stops_at_the_first_refusal(cli: Cli, tmp_path: Path) -> None:
    lines = EXAMPLE.read_text().splitlines()[:2] + ['{"command": "start_cycle", "patient_id": "S001", "cycle": 3, "started_on": "2016-02-03"}', "{not json"]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    done = cli("import", str(path))
    assert done.returncode == 1
    assert "line 3: refused: CYCLE-ORDER" in done.stderr
    kept = cli("import", str(path), "--keep-going", "--json")
    report = json.loads(kept.stdout)
    assert [(p["line"], p["kind"]) for p in report["problems"]] == [(3, "refused"), (4, "invalid")]
    assert report["duplicates"] == 2  # the lines recorded by the first run, known by their derived ids


def test_history_and_escalation_json_have_the_contract_shape(imported: Cli) -> None:
    history = imported.json("patient", "history", "S001")
    assert set(history) == {"patient_id", "entries"}
    assert set(history["entries"][0]) == {"entry_id", "position", "type", "occurred_on", "recorded_at", "recorded_by", "role", "reason", "source", "data"}
    assert history["entries"][0]["source"] == "EDC form ENR-01"
    escalation = imported.json("escalation", "show")
    stratum = escalation["strata"][0]
    assert {"stratum", "status", "current_dose_mg", "next_action", "mtd_mg", "levels"} <= set(stratum)
    assert stratum["levels"][0] == {"dose_mg": 300, "patients": 1, "evaluable": 1, "dlts": 0, "decision": None}


def test_an_unreachable_database_exits_5_saying_what_to_check(tmp_path: Path) -> None:
    cli = Cli("postgresql+psycopg://nobody@127.0.0.1:1/none", tmp_path)
    done = cli("patient", "show", "S001")
    assert done.returncode == 5
    assert "LEDGER_DATABASE_URL" in done.stderr


def test_read_models_are_current_when_a_command_returns(imported: Cli) -> None:
    audit = imported.json("audit", "--patient", "S001")
    assert len(audit["entries"]) == 38  # 37 patient entries and the dose-level assignment
    done = imported("start-cycle", "S001", "--cycle", "3", "--started-on", "2016-03-29")
    assert done.returncode == 0, done.stderr
    latest = imported.json("audit", "--patient", "S001")["entries"][-1]
    assert latest["event_type"] == "CycleStarted" and latest["recorded_by"] == "e2e.user"
    summary = imported.json("summary", "--valid-on", "2016-03-29")
    assert summary["patients"] == 1 and summary["status"] == {"ON_TREATMENT": 1}


def test_rebuild_swaps_in_identical_read_models(imported: Cli) -> None:
    before = imported.json("audit")
    done = imported("rebuild", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["projections"] == ["audit_trail", "patients"]
    assert imported.json("audit") == before
    assert imported("project").stdout.startswith("0 events applied")


def test_project_follow_keeps_read_models_current_for_writers_in_other_processes(cli: Cli, tmp_path: Path) -> None:
    import time

    from ledger.bootstrap import Settings, build_ledger
    from ledger.domain.values import Actor, Role
    from ledger.interfaces.importer import import_file

    assert cli("migrate").returncode == 0
    follower = subprocess.Popen([LEDGER, "project", "--follow", "--interval", "0.2"], env=cli.env, cwd=cli.cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        writer = build_ledger(Settings(database_url=cli.env["LEDGER_DATABASE_URL"], user="other.process"))
        import_file(writer, EXAMPLE, Actor("other.process", Role.COORDINATOR))  # writes without catching up the read models
        writer.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = cli("audit", "--patient", "S001", "--json")
            if done.returncode == 0 and len(json.loads(done.stdout)["entries"]) == 38:
                break
            time.sleep(0.3)
        else:
            pytest.fail("the follower did not bring the audit trail up to date")
    finally:
        follower.terminate()
        follower.wait(timeout=30)
