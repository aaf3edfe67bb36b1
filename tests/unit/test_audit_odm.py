"""The ODM 1.3.2 writer, from audit rows alone: valid against the CDISC schema and self-consistent.

The story: patient P001 at site "SITE-12" with a cycle, a dose and a grade 3 rash; the grade
corrected to 2 by a coordinator and the dose voided; an escalation decision of the stratum; the
cycle signed as reviewed and the decision signed as approved; patient P002 with no site.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element

import pytest

from ledger.audit.odm import OdmContext, write_odm
from tests.audit_builders import Trail, entry, signed
from tests.builders import Course
from tests.odm_checks import NS, ODM, tag, undefined_references, valid_odm

CREATED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
AFTER = datetime(2026, 2, 1, tzinfo=UTC)  # after the course's entries (the builder's clock starts 2026-01-01)


@dataclass
class Story:
    rows: list[dict[str, Any]]
    toxicity: str
    dose: str
    correction: str
    void: str


def context(**changes: Any) -> OdmContext:
    base = OdmContext(study_oid="NCT02311998", study_title="Bosutinib with InO", file_oid="NCT02311998.AUDIT.TEST", created_at=CREATED)
    return replace(base, **changes)


@pytest.fixture
def story() -> Story:
    trail = Trail()
    p1 = Course.enrolled("P001", on="2016-02-01", site="SITE-12")
    p1.cycle(1, "2016-02-02")
    dose = p1.dose("2016-02-02")
    tox = p1.toxicity("2016-02-05", grade=3)
    correction = p1.correct(tox, "2016-02-05", grade=2)
    void = p1.void(dose, "2016-02-02")
    for e in p1.patient.entries:
        if e.entry_id == correction:
            e = replace(e, recorded_by="coord.lee", role="coordinator", reason="source document verification", source="SDV visit 3")
        elif e.entry_id == void:
            e = replace(e, reason="entered twice")
        trail.add(e, patient_id="P001")
    decision = {"decided_on": "2016-03-01", "dose_mg": 300, "decision": "ESCALATE", "mtd_mg": None, "basis": [tox], "recommended": "ESCALATE"}
    trail.add(entry("EscalationDecided", AFTER, decision))
    trail.add(signed(AFTER + timedelta(hours=1), "CYCLE", cycle=1), patient_id="P001")
    trail.add(signed(AFTER + timedelta(hours=2), "ESCALATION_DECISION", meaning="approved", printed_name="Asha Jain"))
    for e in Course.enrolled("P002", on="2016-02-03").patient.entries:
        trail.add(e, patient_id="P002")
    return Story(trail.rows, tox, dose, correction, void)


def odm(rows: list[dict[str, Any]], ctx: OdmContext | None = None) -> Element:
    out = io.StringIO()
    write_odm(rows, out, ctx or context())
    return valid_odm(out.getvalue())


def subjects(root: Element, key: str) -> list[Element]:
    return [s for s in root.iterfind(".//odm:SubjectData", ODM) if s.get("SubjectKey") == key]


def item(root: Element, item_oid: str, change: str = "Insert") -> Element:
    [found] = [i for i in root.iterfind(".//odm:ItemData", ODM) if i.get("ItemOID") == item_oid and i.get("TransactionType") == change]
    return found


def form(root: Element, entry_id: str, change: str = "Insert") -> Element:
    [found] = [f for f in root.iterfind(".//odm:FormData", ODM) if f.get("FormRepeatKey") == entry_id and f.get("TransactionType") == change]
    return found


def value(form: Element, item_oid: str) -> str | None:
    [found] = [i for i in form.iterfind(".//odm:ItemData", ODM) if i.get("ItemOID") == item_oid]
    return found.get("Value")


def text(element: Element, path: str) -> str | None:
    found = element.find(path, ODM)
    return None if found is None else found.text


def test_the_file_with_corrections_a_void_a_stratum_decision_and_signatures_is_valid_odm_1_3_2(story: Story) -> None:
    root = odm(story.rows)  # raises unless the CDISC schema accepts it
    assert root.get("ODMVersion") == "1.3.2" and root.get("FileType") == "Transactional" and root.get("Archival") == "Yes"
    assert root.get("CreationDateTime") == root.get("AsOfDateTime") == CREATED.isoformat()


def test_every_oid_the_file_references_is_defined_in_it(story: Story) -> None:
    assert undefined_references(odm(story.rows)) == []


def test_each_entry_is_one_transaction_in_recorded_order(story: Story) -> None:
    root = odm(story.rows)
    keys = [s.get("SubjectKey") for s in root.iterfind(".//odm:SubjectData", ODM)]
    assert keys == ["P001"] * 6 + ["STRATUM:default", "P001", "STRATUM:default", "P002"]
    assert [s.get("TransactionType") for s in subjects(root, "P001")] == ["Insert"] + ["Update"] * 6  # enrolled first, then added to


def test_every_field_of_a_new_entry_is_an_inserted_item_with_who_when_where_why_and_source(story: Story) -> None:
    root = odm(story.rows)
    grade = item(root, "IT.ToxicityReported.grade")
    assert grade.get("Value") == "3"
    record = grade.find("odm:AuditRecord", ODM)
    assert record is not None
    assert record.find("odm:UserRef", ODM).get("UserOID") == "USR.investigator.tester"  # type: ignore[union-attr]
    assert record.find("odm:LocationRef", ODM).get("LocationOID") == "LOC.SITE-12"  # type: ignore[union-attr]
    assert text(record, "odm:DateTimeStamp") == next(r for r in story.rows if r["entry_id"] == story.toxicity)["recorded_at"].isoformat()
    assert all(i.find("odm:AuditRecord", ODM) is not None for i in root.iterfind(".//odm:ItemData", ODM))
    assert value(form(root, story.toxicity), "IT.ENTRY.occurred_on") == "2016-02-05"
    assert item(root, "IT.ToxicityReported.dlt").get("IsNull") == "Yes"


def test_a_correction_updates_the_corrected_item_of_the_amended_entry_with_its_reason_and_the_value_before(story: Story) -> None:
    root = odm(story.rows)
    updated = item(root, "IT.ToxicityReported.grade", "Update")
    assert updated.get("Value") == "2"
    assert form(root, story.toxicity, "Update").get("FormOID") == "F.ToxicityReported"
    record = updated.find("odm:AuditRecord", ODM)
    assert record is not None and record.get("ID", "").startswith(f"AR.{story.correction}.")
    assert record.find("odm:UserRef", ODM).get("UserOID") == "USR.coordinator.coord.lee"  # type: ignore[union-attr]
    assert text(record, "odm:ReasonForChange") == "source document verification"
    assert text(record, "odm:SourceID") == "SDV visit 3"
    assert text(updated, "odm:Annotation/odm:Comment") == "Value before this change: 3"


def test_a_void_removes_the_amended_entry_s_form_under_the_void_s_audit_record(story: Story) -> None:
    root = odm(story.rows)
    removed = form(root, story.dose, "Remove")
    assert removed.get("FormOID") == "F.BosutinibDoseRecorded"
    assert [tag(child) for child in removed] == ["AuditRecord"]
    assert text(removed, "odm:AuditRecord/odm:ReasonForChange") == "entered twice"
    assert removed.find("odm:AuditRecord", ODM).get("ID", "").startswith(f"AR.{story.void}.")  # type: ignore[union-attr]


def test_a_stratum_s_decision_goes_to_the_stratum_s_own_subject(story: Story) -> None:
    root = odm(story.rows)
    decision, _signature = subjects(root, "STRATUM:default")
    assert decision.find("odm:StudyEventData", ODM).get("StudyEventOID") == "SE.ESCALATION"  # type: ignore[union-attr]
    assert item(root, "IT.EscalationDecided.decision").get("Value") == "ESCALATE"
    assert item(root, "IT.EscalationDecided.basis").get("Value") == f'["{story.toxicity}"]'


def test_a_signature_names_the_signer_the_time_and_a_definition_with_its_meaning_and_legal_reason(story: Story) -> None:
    root = odm(story.rows)
    [signature] = [s.find("odm:Signature", ODM) for s in subjects(root, "P001") if s.find("odm:Signature", ODM) is not None]
    assert signature is not None
    assert signature.find("odm:UserRef", ODM).get("UserOID") == "USR.investigator.dr.jain"  # type: ignore[union-attr]
    assert signature.find("odm:SignatureRef", ODM).get("SignatureOID") == "SD.reviewed"  # type: ignore[union-attr]
    assert text(signature, "odm:DateTimeStamp") == (AFTER + timedelta(hours=1)).isoformat()
    definitions = {d.get("OID"): (text(d, "odm:Meaning"), text(d, "odm:LegalReason")) for d in root.iterfind(".//odm:SignatureDef", ODM)}
    assert definitions == {"SD.reviewed": ("reviewed", "21 CFR 11.50"), "SD.approved": ("approved", "21 CFR 11.50")}
    [signer] = [u for u in root.iterfind(".//odm:User", ODM) if u.get("OID") == "USR.investigator.dr.jain"]
    assert text(signer, "odm:FullName") == "Asha Jain"  # the printed name (11.50(a)(1)), the latest one given
    signed_cycle = next(r for r in story.rows if r["event_type"] == "RecordSigned")["entry_id"]
    assert value(form(root, signed_cycle), "IT.RecordSigned.state_hash") == "ab" * 32
    assert value(form(root, signed_cycle), "IT.RecordSigned.cycle") == "1"


def test_a_patient_s_entries_are_located_at_their_site_and_the_rest_at_the_ledger(story: Story) -> None:
    root = odm(story.rows)
    locations = {s.get("SubjectKey"): {r.get("LocationOID") for r in s.iter(NS + "LocationRef")} for s in root.iterfind(".//odm:SubjectData", ODM)}
    assert locations == {"P001": {"LOC.SITE-12"}, "STRATUM:default": {"LOC.LEDGER"}, "P002": {"LOC.LEDGER"}}
    assert {loc.get("OID"): loc.get("LocationType") for loc in root.iterfind(".//odm:Location", ODM)} == {"LOC.LEDGER": "Sponsor", "LOC.SITE-12": "Site"}


def test_a_correction_whose_amended_entry_is_not_exported_is_placed_by_the_context(story: Story) -> None:
    corrections = [r for r in story.rows if r["event_type"] == "EntryCorrected"]
    root = odm(corrections, context(amended={story.toxicity: "ToxicityReported"}, sites={"P001": "SITE-12"}))
    assert item(root, "IT.ToxicityReported.grade", "Update").get("Value") == "2"
    assert undefined_references(root) == []


def test_without_the_amended_entry_s_type_a_correction_is_written_as_an_entry_of_its_own(story: Story) -> None:
    corrections = [r for r in story.rows if r["event_type"] == "EntryCorrected"]
    root = odm(corrections)
    assert item(root, "IT.EntryCorrected.amends_entry_id").get("Value") == story.toxicity
    assert item(root, "IT.EntryCorrected.changes").get("Value") == '{"grade": 2}'


def test_characters_xml_cannot_carry_are_written_as_their_code(story: Story) -> None:
    rows = [{**r, "reason": "typo\x01fixed"} if r["event_type"] == "EntryCorrected" else r for r in story.rows]
    root = odm(rows)
    assert text(item(root, "IT.ToxicityReported.grade", "Update"), "odm:AuditRecord/odm:ReasonForChange") == "typo\\u0001fixed"


def test_item_definitions_give_the_data_type_of_the_values(story: Story) -> None:
    root = odm(story.rows)
    types = {d.get("OID"): d.get("DataType") for d in root.iterfind(".//odm:ItemDef", ODM)}
    assert types["IT.ToxicityReported.grade"] == "integer"
    assert types["IT.ToxicityReported.onset_on"] == "date"
    assert types["IT.PatientEnrolled.bsa_m2"] == "float"
    assert types["IT.ToxicityReported.serious"] == "boolean"
    assert types["IT.ToxicityReported.term"] == "text"


def test_no_rows_still_make_a_valid_file() -> None:
    root = odm([])
    assert root.findall(".//odm:SubjectData", ODM) == []
