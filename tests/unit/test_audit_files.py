"""The CSV and JSON writers of the audit export: one record per audit row, every column, searchable and sortable."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ledger.audit.export import write_csv, write_json
from ledger.audit.selection import AuditFilter, columns
from tests.audit_builders import Trail
from tests.builders import Course


def corrected_trail() -> list[dict[str, Any]]:
    """An enrollment and a toxicity whose grade and term were then corrected, with a reason."""
    trail = Trail()
    course = Course.enrolled("P001", on="2016-02-01", site="SITE-12")
    tox = course.toxicity("2016-02-05", term="Rash", grade=3)
    fixed = course.correct(tox, "2016-02-05", grade=2, term="Rash, maculo-papular")
    for e in course.patient.entries:
        trail.add(replace(e, reason="lab report") if e.entry_id == fixed else e, patient_id="P001")
    return trail.rows


def test_csv_has_the_columns_as_header_and_a_line_per_audit_row() -> None:
    out = io.StringIO()
    write_csv(corrected_trail(), out)
    header, *lines = list(csv.reader(io.StringIO(out.getvalue())))
    assert tuple(header) == columns()
    assert len(lines) == 4  # the enrollment, the toxicity, the two corrected fields
    rows = [dict(zip(header, line, strict=True)) for line in lines]
    assert [(r["field"], r["old_value"], r["new_value"], r["reason"]) for r in rows[2:]] == [
        ("grade", "3", "2", "lab report"),
        ("term", "Rash", "Rash, maculo-papular", "lab report"),
    ]
    assert json.loads(rows[0]["data"])["site"] == "SITE-12"
    assert rows[0]["recorded_at"] == "2026-01-01T00:00:00+00:00" and rows[0]["reason"] == ""


def test_json_holds_the_rows_the_filters_and_the_time_of_the_export() -> None:
    out = io.StringIO()
    filters = AuditFilter(patient_id="P001", event_types=("EntryCorrected",), as_of=datetime(2026, 2, 1, tzinfo=UTC))
    write_json(corrected_trail(), out, {"exported_at": datetime(2026, 3, 1, tzinfo=UTC), "filters": filters.as_dict()})
    doc = json.loads(out.getvalue())
    assert doc["exported_at"] == "2026-03-01T00:00:00+00:00"
    assert doc["filters"] == {"patient": "P001", "user": None, "from": None, "to": None, "type": ["EntryCorrected"], "as_of": "2026-02-01T00:00:00+00:00"}
    assert doc["count"] == len(doc["entries"]) == 4
    assert set(doc["entries"][0]) == set(columns())
    assert doc["entries"][3]["data"]["changes"] == {"grade": 2, "term": "Rash, maculo-papular"}


def test_json_of_no_rows_is_an_empty_list() -> None:
    out = io.StringIO()
    write_json([], out, {})
    assert json.loads(out.getvalue()) == {"entries": [], "count": 0}
