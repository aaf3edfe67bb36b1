"""Audit exports read from the audit-trail read model, on SQLite and PostgreSQL: each filter, and ODM placed by the whole trail.

The story: the example patient imported by a coordinator on day 0; on day 10 an investigator
corrects the toxicity's grade and the enrollment's site; on day 20 a dose is voided.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.application import TrialLedger
from ledger.audit import AuditFilter, ExportResult, export
from ledger.clock import FixedClock
from ledger.commands import CorrectEntry, VoidEntry
from ledger.domain.values import Actor
from ledger.interfaces.importer import import_file
from ledger.projections.projector import Projector
from tests.odm_checks import ODM, undefined_references, valid_odm

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-patient.jsonl"


@dataclass
class Story:
    imported: datetime
    corrected: datetime
    voided: datetime
    toxicity: str


@pytest.fixture
def story(ledger: TrialLedger, coordinator: Actor, investigator: Actor, clock: FixedClock) -> Story:
    imported = clock.now()
    import_file(ledger, EXAMPLE, coordinator)
    entries = ledger.load_patient("S001").entries
    tox = next(e.entry_id for e in entries if e.kind == "ToxicityReported")
    clock.advance(days=10)
    ledger.handle(CorrectEntry(patient_id="S001", entry_id=tox, changes={"grade": 2}, reason="lab report"), investigator)
    ledger.handle(CorrectEntry(patient_id="S001", entry_id=entries[0].entry_id, changes={"site": "SITE-07"}, reason="site missing at enrollment"), investigator)
    corrected = clock.now()
    clock.advance(days=10)
    dose = next(e.entry_id for e in entries if e.kind == "BosutinibDoseRecorded")
    ledger.handle(VoidEntry(patient_id="S001", entry_id=dose, reason="entered twice"), investigator)
    Projector(ledger).catch_up()
    return Story(imported, corrected, clock.now(), tox)


def exported(ledger: TrialLedger, **filters: Any) -> tuple[dict[str, Any], ExportResult]:
    out = io.StringIO()
    result = export(ledger, "json", AuditFilter(**filters), out)
    return json.loads(out.getvalue()), result


def types(doc: dict[str, Any]) -> list[str]:
    return [row["event_type"] for row in doc["entries"]]


def test_the_whole_trail_is_every_entry_with_a_row_per_corrected_field(ledger: TrialLedger, story: Story) -> None:
    doc, result = exported(ledger)
    assert (result.entries, result.rows) == (42, 42) and doc["count"] == 42  # 39 imported, 2 corrections, 1 void
    assert result.exported_at == story.voided and doc["exported_at"] == story.voided.isoformat()
    assert [r["seq"] for r in doc["entries"]] == [0] * 42


def test_as_of_exports_only_what_was_recorded_by_then(ledger: TrialLedger, story: Story) -> None:
    doc, _ = exported(ledger, as_of=story.imported + timedelta(days=1))
    assert len(doc["entries"]) == 39 and "EntryCorrected" not in types(doc)
    assert doc["filters"]["as_of"] == (story.imported + timedelta(days=1)).isoformat()


def test_the_recorded_window_includes_its_start_and_excludes_its_end(ledger: TrialLedger, story: Story) -> None:
    doc, _ = exported(ledger, recorded_from=story.corrected, recorded_to=story.voided)
    assert types(doc) == ["EntryCorrected", "EntryCorrected"]
    doc, _ = exported(ledger, recorded_from=story.corrected)
    assert types(doc) == ["EntryCorrected", "EntryCorrected", "EntryVoided"]


def test_the_user_filter_keeps_the_entries_that_user_recorded(ledger: TrialLedger, story: Story, investigator: Actor) -> None:
    doc, _ = exported(ledger, user=investigator.user)
    assert types(doc) == ["EntryCorrected", "EntryCorrected", "EntryVoided"]
    assert {r["role"] for r in doc["entries"]} == {"investigator"}


def test_the_type_and_patient_filters_combine(ledger: TrialLedger, story: Story) -> None:
    doc, result = exported(ledger, patient_id="S001", event_types=("EntryVoided", "PatientEnrolled"))
    assert types(doc) == ["PatientEnrolled", "EntryVoided"] and result.entries == 2
    assert exported(ledger, patient_id="S999")[0]["entries"] == []


def test_an_odm_export_of_corrections_alone_updates_the_amended_entries_at_the_patient_s_site(ledger: TrialLedger, story: Story) -> None:
    out = io.StringIO()
    result = export(ledger, "odm", AuditFilter(event_types=("EntryCorrected",)), out)
    root = valid_odm(out.getvalue())
    assert undefined_references(root) == [] and result.entries == 2
    forms = [(f.get("FormOID"), f.get("FormRepeatKey"), f.get("TransactionType")) for f in root.iterfind(".//odm:FormData", ODM)]
    assert forms[0] == ("F.ToxicityReported", story.toxicity, "Update") and forms[1][0] == "F.PatientEnrolled"
    assert {r.get("LocationOID") for r in root.iterfind(".//odm:AuditRecord/odm:LocationRef", ODM)} == {"LOC.SITE-07"}


def test_an_odm_export_as_of_before_a_site_correction_locates_the_patient_at_the_ledger(ledger: TrialLedger, story: Story) -> None:
    out = io.StringIO()
    export(ledger, "odm", AuditFilter(as_of=story.imported), out)
    root = valid_odm(out.getvalue())
    assert {r.get("LocationOID") for r in root.iterfind(".//odm:LocationRef", ODM)} == {"LOC.LEDGER"}
    assert root.get("AsOfDateTime") == story.imported.isoformat()
