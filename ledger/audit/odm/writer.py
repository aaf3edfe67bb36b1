"""Audit rows as a CDISC ODM 1.3.2 file, one transaction per entry: the writer.

The writer takes rows, not a database, and streams: transactions are written to a spooled
temporary file while the users, locations, signatures and definitions they reference are
gathered (``Definitions``), then written after the metadata that must precede them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any, TextIO
from xml.etree.ElementTree import Element

from ledger.audit.odm.definitions import ENVELOPE_GROUP, ENVELOPE_ITEMS, LEDGER_LOCATION, METADATA_VERSION, Definitions
from ledger.audit.odm.elements import ODM_NAMESPACE, attr, child, element, ncname, serialized, timestamp

SIGNATURE_EVENT = "RecordSigned"
CORRECTION, VOID = "EntryCorrected", "EntryVoided"

#: the entries that create their subject: its first transaction inserts it, later ones update it
CREATING_EVENTS = frozenset({"PatientEnrolled", "EscalationOpened"})

_SPOOL_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class OdmContext:
    """What the file says about itself, and what the rows alone may not tell.

    ``sites`` gives a patient's site (their ``Location``) and ``amended`` the event type of an
    entry a correction or void amends, for entries outside the exported rows; what the rows
    hold themselves (enrollments, amended entries exported too) is learnt from them.
    """

    study_oid: str
    study_title: str
    file_oid: str
    created_at: datetime
    as_of: datetime | None = None
    description: str | None = None
    sites: Mapping[str, str] = field(default_factory=dict)
    amended: Mapping[str, str] = field(default_factory=dict)


def write_odm(rows: Iterable[Mapping[str, Any]], out: TextIO, context: OdmContext) -> int:
    """Write ``rows`` (audit rows, oldest first) to ``out`` as ODM 1.3.2; how many entries were written."""
    transactions = _Transactions(context)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+", encoding="utf-8") as clinical:
        for _, entry_rows in groupby(rows, key=itemgetter("position")):
            clinical.write(serialized(transactions.entry(list(entry_rows)), level=2))
        out.write(_header(context))
        out.write(serialized(transactions.definitions.study(context.study_oid, context.study_title), level=1))
        out.write(serialized(transactions.definitions.admin(context.study_oid, context.created_at), level=1))
        out.write(f"  <ClinicalData StudyOID={attr(context.study_oid)} MetaDataVersionOID={attr(METADATA_VERSION)}>\n")
        clinical.seek(0)
        shutil.copyfileobj(clinical, out)
        out.write("  </ClinicalData>\n</ODM>\n")
    return transactions.entries


class _Transactions:
    """Turns each entry's rows into the ``SubjectData`` of its transaction."""

    def __init__(self, context: OdmContext) -> None:
        self.context = context
        self.definitions = Definitions()
        self.kinds: dict[str, str] = dict(context.amended)  # entry id -> event type
        self.sites: dict[str, str] = {}  # learnt from the rows; the context's win
        self.entries = 0

    def entry(self, rows: list[Mapping[str, Any]]) -> Element:
        first = rows[0]
        kind, data = first["event_type"], first["data"]
        self.entries += 1
        self.kinds[first["entry_id"]] = kind
        self._learn_site(first)
        self.definitions.saw(first["recorded_at"])
        audit = _Audit(
            user=self.definitions.user(first["recorded_by"], first["role"]),
            location=self._location(first["patient_id"]),
            row=first,
        )
        key, study_event = _subject(first)
        change = "Insert" if kind in CREATING_EVENTS else "Update"
        subject = element("SubjectData", SubjectKey=key, TransactionType=change)
        if kind == SIGNATURE_EVENT:
            subject.append(self._signature(first, audit.location))
        if audit.location != LEDGER_LOCATION:
            child(subject, "SiteRef", LocationOID=audit.location)
        event = child(subject, "StudyEventData", StudyEventOID=study_event, TransactionType=change)
        target = self.kinds.get(data.get("amends_entry_id") or "") if kind in (CORRECTION, VOID) else None
        if kind == CORRECTION and target is not None:
            self._update(event, study_event, target, rows, audit)
        elif kind == VOID and target is not None:
            self._remove(event, study_event, target, audit)
        else:
            self._insert(event, study_event, kind, audit)
        return subject

    def _insert(self, event: Element, study_event: str, kind: str, audit: _Audit) -> None:
        row = audit.row
        form = self._form(event, study_event, kind, row["entry_id"], "Insert")
        envelope = self._group(form, kind, ENVELOPE_GROUP, "Insert")
        for name in ENVELOPE_ITEMS:
            self._item(envelope, ENVELOPE_GROUP, f"IT.ENTRY.{name}", name, row[name], "Insert", audit)
        group = self._group(form, kind, f"IG.{kind}", "Insert")
        for name, value in sorted(row["data"].items()):
            self._item(group, f"IG.{kind}", f"IT.{kind}.{name}", name, value, "Insert", audit)

    def _update(self, event: Element, study_event: str, target: str, rows: list[Mapping[str, Any]], audit: _Audit) -> None:
        data = audit.row["data"]
        form = self._form(event, study_event, target, data["amends_entry_id"], "Update")
        group = self._group(form, target, f"IG.{target}", "Update")
        for row in rows:
            name = row["field"]
            new = data["changes"].get(name, row["new_value"])
            old = data["old_values"].get(name, row["old_value"])
            item = self._item(group, f"IG.{target}", f"IT.{target}.{name}", name, new, "Update", audit)
            note = child(item, "Annotation", SeqNum="1")
            child(note, "Comment", text=f"Value before this change: {_value(old) if old is not None else '(none)'}", SponsorOrSite="Sponsor")

    def _remove(self, event: Element, study_event: str, target: str, audit: _Audit) -> None:
        form = self._form(event, study_event, target, audit.row["data"]["amends_entry_id"], "Remove")
        form.append(audit.record("FORM"))

    def _form(self, event: Element, study_event: str, kind: str, entry_id: str, change: str) -> Element:
        self.definitions.form(study_event, f"F.{kind}", kind)
        return child(event, "FormData", FormOID=f"F.{kind}", FormRepeatKey=entry_id, TransactionType=change)

    def _group(self, form: Element, kind: str, group_oid: str, change: str) -> Element:
        self.definitions.group(f"F.{kind}", group_oid, "Entry envelope" if group_oid == ENVELOPE_GROUP else kind)
        return child(form, "ItemGroupData", ItemGroupOID=group_oid, TransactionType=change)

    def _item(self, group: Element, group_oid: str, item_oid: str, name: str, value: Any, change: str, audit: _Audit) -> Element:
        text = _value(value)
        self.definitions.item(group_oid, item_oid, name, value, text)
        attributes = {"Value": text} if text is not None else {"IsNull": "Yes"}
        item = child(group, "ItemData", ItemOID=item_oid, TransactionType=change, **attributes)
        item.append(audit.record(item_oid))
        return item

    def _signature(self, row: Mapping[str, Any], location: str) -> Element:
        data = row["data"]
        signer = str(data.get("signer") or row["recorded_by"])
        signature = element("Signature")
        child(signature, "UserRef", UserOID=self.definitions.user(signer, row["role"], data.get("printed_name")))
        child(signature, "LocationRef", LocationOID=location)
        child(signature, "SignatureRef", SignatureOID=self.definitions.signature(str(data.get("meaning") or "signed")))
        child(signature, "DateTimeStamp", text=timestamp(row["recorded_at"]))
        return signature

    def _learn_site(self, row: Mapping[str, Any]) -> None:
        patient, data = row["patient_id"], row["data"]
        if patient is None:
            return
        if row["event_type"] == "PatientEnrolled" and data.get("site"):
            self.sites[patient] = str(data["site"])
        elif row["event_type"] == CORRECTION and row["field"] == "site" and data["changes"].get("site"):
            self.sites[patient] = str(data["changes"]["site"])

    def _location(self, patient_id: str | None) -> str:
        if patient_id is None:
            return self.definitions.location(None)
        return self.definitions.location(self.context.sites.get(patient_id) or self.sites.get(patient_id))


@dataclass(frozen=True)
class _Audit:
    """The envelope of one entry as ODM audit records."""

    user: str
    location: str
    row: Mapping[str, Any]

    def record(self, what: str) -> Element:
        row = self.row
        record = element("AuditRecord", ID=ncname(f"AR.{row['entry_id']}.{what}"))
        child(record, "UserRef", UserOID=self.user)
        child(record, "LocationRef", LocationOID=self.location)
        child(record, "DateTimeStamp", text=timestamp(row["recorded_at"]))
        if row["reason"]:
            child(record, "ReasonForChange", text=row["reason"])
        if row["source"]:
            child(record, "SourceID", text=row["source"])
        return record


def _subject(row: Mapping[str, Any]) -> tuple[str, str]:
    """The subject key and study event of an entry: its patient, else its stratum."""
    if row["patient_id"] is not None:
        return row["patient_id"], "SE.COURSE"
    return f"STRATUM:{row['stratum']}", "SE.ESCALATION"


def _value(value: Any) -> str | None:
    """An item's ``Value``: text as it is, true/false, numbers and lists as JSON, dates in ISO 8601."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return json.dumps(value)


def _header(context: OdmContext) -> str:
    attributes = {
        "xmlns": ODM_NAMESPACE,
        "ODMVersion": "1.3.2",
        "FileType": "Transactional",
        "Archival": "Yes",
        "FileOID": context.file_oid,
        "CreationDateTime": timestamp(context.created_at),
        "AsOfDateTime": timestamp(context.as_of or context.created_at),
        "Originator": "trial-ledger",
        "SourceSystem": "trial-ledger",
    }
    if context.description:
        attributes["Description"] = context.description
    rendered = "".join(f"\n     {name}={attr(value)}" for name, value in attributes.items())
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<ODM{rendered}>\n'
