"""``ledger audit export`` as an inspector drives it: the example patient, a grade and term corrected from the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.e2e.test_cli import EXAMPLE, Cli
from tests.odm_checks import ODM, undefined_references, valid_odm


@pytest.fixture
def corrected(database_url: str, tmp_path: Path) -> Cli:
    cli = Cli(database_url, tmp_path)
    assert cli("import", str(EXAMPLE)).returncode == 0
    history = cli.json("patient", "history", "S001")["entries"]
    tox = next(e for e in history if e["type"] == "ToxicityReported")
    done = cli("correct-entry", "S001", "--entry-id", tox["entry_id"], "--set", "grade=2", "--set", "term=Nausea and vomiting", "--reason", "lab report")
    assert done.returncode == 0, done.stderr
    return cli


def test_csv_to_standard_output_has_a_header_and_a_row_per_audit_row(corrected: Cli) -> None:
    done = corrected("audit", "export", "--format", "csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) == 41  # 39 imported entries, the correction's two fields
    assert [(r["field"], r["new_value"], r["recorded_by"], r["role"], r["reason"]) for r in rows[-2:]] == [
        ("grade", "2", "e2e.user", "investigator", "lab report"),
        ("term", "Nausea and vomiting", "e2e.user", "investigator", "lab report"),
    ]


def test_json_to_a_file_keeps_what_the_filters_select_and_says_how_many(corrected: Cli, tmp_path: Path) -> None:
    out = tmp_path / "corrections.json"
    done = corrected("audit", "export", "--format", "json", "--patient", "S001", "--user", "e2e.user", "--type", "EntryCorrected", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "1 entry (2 rows) written to" in done.stderr
    doc = json.loads(out.read_text())
    assert [(e["field"], e["old_value"]) for e in doc["entries"]] == [("grade", "1"), ("term", "Nausea")]
    assert doc["filters"] == {"patient": "S001", "user": "e2e.user", "from": None, "to": None, "type": ["EntryCorrected"], "as_of": None}
    first_correction = doc["entries"][0]["recorded_at"]
    before = corrected("audit", "export", "--format", "json", "--to", first_correction)
    assert "EntryCorrected" not in {e["event_type"] for e in json.loads(before.stdout)["entries"]}


def test_odm_to_a_file_is_valid_odm_1_3_2_with_the_correction_as_an_update(corrected: Cli, tmp_path: Path) -> None:
    out = tmp_path / "trail.xml"
    done = corrected("audit", "export", "--format", "odm", "--output", str(out))
    assert done.returncode == 0, done.stderr
    root = valid_odm(out.read_text(encoding="utf-8"))
    assert undefined_references(root) == []
    updates = [i for i in root.iterfind(".//odm:ItemData", ODM) if i.get("TransactionType") == "Update"]
    assert [(i.get("ItemOID"), i.get("Value")) for i in updates] == [("IT.ToxicityReported.grade", "2"), ("IT.ToxicityReported.term", "Nausea and vomiting")]
    assert {i.findtext("odm:AuditRecord/odm:ReasonForChange", namespaces=ODM) for i in updates} == {"lab report"}


def test_the_audit_listing_still_answers_alone_and_as_show(corrected: Cli) -> None:
    assert corrected.json("audit", "--patient", "S001") == corrected.json("audit", "show", "--patient", "S001")


def test_a_malformed_time_an_unknown_format_or_an_unwritable_file_is_a_usage_error(corrected: Cli, tmp_path: Path) -> None:
    assert corrected("audit", "export", "--format", "csv", "--from", "yesterday").returncode == 2
    assert corrected("audit", "export", "--format", "xml").returncode == 2
    done = corrected("audit", "export", "--format", "csv", "--output", str(tmp_path / "no-such-dir" / "trail.csv"))
    assert done.returncode == 2 and "--output" in done.stderr
