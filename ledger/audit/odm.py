"""Audit rows as a CDISC ODM 1.3.2 file: ``FileType="Transactional"``, ``Archival="Yes"``.

Every entry of the ledger is one transaction, in recorded order (docs/audit-export.md has the
whole mapping and why):

- a patient is a ``SubjectData`` (``SubjectKey`` = the study subject id); the entries of a
  stratum's escalation that concern no patient (its opening, 3+3 decisions, their signatures)
  go to the subject ``STRATUM:<stratum>``;
- an entry is a ``FormData`` ``F.<EventType>`` whose ``FormRepeatKey`` is its entry id, in the
  study event ``SE.COURSE`` (patients) or ``SE.ESCALATION`` (strata); inside it ``IG.ENTRY``
  holds the envelope (valid date, protocol version, command id) and ``IG.<EventType>`` the
  event's own fields, one ``ItemData`` ``IT.<EventType>.<field>`` each, each with the
  ``AuditRecord`` of the entry: user (one ODM ``User`` per user and role), location (the
  patient's site, else ``LOC.LEDGER``), recorded time, reason and source;
- a correction updates the corrected items of the entry it amends (``TransactionType="Update"``),
  its own user, time and reason in their audit records, and the value before it in an
  ``Annotation`` (ODM keeps no old value beside an item); a void removes the amended entry's
  form (``TransactionType="Remove"``) with the void's audit record;
- a ``RecordSigned`` entry carries a ``Signature`` on its ``SubjectData``
  (21 CFR 11.50: who, when and the meaning, through its ``SignatureDef``).

The writer takes rows, not a database, and streams: transactions are written to a spooled
temporary file while the users, locations, signatures and definitions they reference are
gathered, then written after the metadata that must precede them.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any, TextIO
from xml.etree.ElementTree import Element, indent, tostring
from xml.sax.saxutils import quoteattr

ODM_NAMESPACE = "http://www.cdisc.org/ns/odm/v1.3"
METADATA_VERSION = "MDV.AUDIT"
LEDGER_LOCATION = "LOC.LEDGER"
ENVELOPE_GROUP = "IG.ENTRY"
SIGNATURE_EVENT = "RecordSigned"
LEGAL_REASON = "21 CFR 11.50"
CORRECTION, VOID = "EntryCorrected", "EntryVoided"

#: the entries that create their subject: its first transaction inserts it, later ones update it
CREATING_EVENTS = frozenset({"PatientEnrolled", "EscalationOpened"})

#: the envelope items of ``IG.ENTRY``, with what an inspector reads on their definition
ENVELOPE_ITEMS = {
    "occurred_on": "valid time: the clinical date the entry is about (the recorded time is the audit record's DateTimeStamp)",
    "protocol_version": "the protocol version in force when the entry was recorded",
    "command_id": "the client's idempotency key of the command that recorded the entry",
}

STUDY_EVENTS = {"SE.COURSE": "Patient course", "SE.ESCALATION": "Dose escalation of a stratum"}

_SPOOL_BYTES = 16 * 1024 * 1024
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 cannot carry
_NOT_NCNAME = re.compile(r"[^A-Za-z0-9._-]")


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
            clinical.write(_xml(transactions.entry(list(entry_rows)), level=2))
        out.write(_header(context))
        out.write(_xml(transactions.definitions.study(context), level=1))
        out.write(_xml(transactions.definitions.admin(context), level=1))
        out.write(f"  <ClinicalData StudyOID={_attr(context.study_oid)} MetaDataVersionOID={_attr(METADATA_VERSION)}>\n")
        clinical.seek(0)
        shutil.copyfileobj(clinical, out)
        out.write("  </ClinicalData>\n</ODM>\n")
    return transactions.entries


class _Transactions:
    """Turns each entry's rows into the ``SubjectData`` of its transaction."""

    def __init__(self, context: OdmContext) -> None:
        self.context = context
        self.definitions = _Definitions()
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
        subject = _element("SubjectData", SubjectKey=key, TransactionType=change)
        if kind == SIGNATURE_EVENT:
            subject.append(self._signature(first, audit.location))
        if audit.location != LEDGER_LOCATION:
            _child(subject, "SiteRef", LocationOID=audit.location)
        event = _child(subject, "StudyEventData", StudyEventOID=study_event, TransactionType=change)
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
            note = _child(item, "Annotation", SeqNum="1")
            _child(note, "Comment", text=f"Value before this change: {_value(old) if old is not None else '(none)'}", SponsorOrSite="Sponsor")

    def _remove(self, event: Element, study_event: str, target: str, audit: _Audit) -> None:
        form = self._form(event, study_event, target, audit.row["data"]["amends_entry_id"], "Remove")
        form.append(audit.record("FORM"))

    def _form(self, event: Element, study_event: str, kind: str, entry_id: str, change: str) -> Element:
        self.definitions.form(study_event, f"F.{kind}", kind)
        return _child(event, "FormData", FormOID=f"F.{kind}", FormRepeatKey=entry_id, TransactionType=change)

    def _group(self, form: Element, kind: str, group_oid: str, change: str) -> Element:
        self.definitions.group(f"F.{kind}", group_oid, "Entry envelope" if group_oid == ENVELOPE_GROUP else kind)
        return _child(form, "ItemGroupData", ItemGroupOID=group_oid, TransactionType=change)

    def _item(self, group: Element, group_oid: str, item_oid: str, name: str, value: Any, change: str, audit: _Audit) -> Element:
        text = _value(value)
        self.definitions.item(group_oid, item_oid, name, value, text)
        attributes = {"Value": text} if text is not None else {"IsNull": "Yes"}
        item = _child(group, "ItemData", ItemOID=item_oid, TransactionType=change, **attributes)
        item.append(audit.record(item_oid))
        return item

    def _signature(self, row: Mapping[str, Any], location: str) -> Element:
        data = row["data"]
        signer = str(data.get("signer") or row["recorded_by"])
        signature = _element("Signature")
        _child(signature, "UserRef", UserOID=self.definitions.user(signer, row["role"], data.get("printed_name")))
        _child(signature, "LocationRef", LocationOID=location)
        _child(signature, "SignatureRef", SignatureOID=self.definitions.signature(str(data.get("meaning") or "signed")))
        _child(signature, "DateTimeStamp", text=_timestamp(row["recorded_at"]))
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
        record = _element("AuditRecord", ID=_ncname(f"AR.{row['entry_id']}.{what}"))
        _child(record, "UserRef", UserOID=self.user)
        _child(record, "LocationRef", LocationOID=self.location)
        _child(record, "DateTimeStamp", text=_timestamp(row["recorded_at"]))
        if row["reason"]:
            _child(record, "ReasonForChange", text=row["reason"])
        if row["source"]:
            _child(record, "SourceID", text=row["source"])
        return record


@dataclass
class _ItemDef:
    name: str
    data_type: str | None = None
    length: int = 1


@dataclass
class _User:
    login: str
    role: str
    full_name: str | None = None


class _Definitions:
    """Every OID the transactions reference, to be defined in ``Study`` and ``AdminData``."""

    def __init__(self) -> None:
        self.forms: dict[str, dict[str, str]] = {}  # study event -> form OID -> name
        self.groups: dict[str, dict[str, str]] = {}  # form OID -> group OID -> name
        self.items: dict[str, dict[str, _ItemDef]] = {}  # group OID -> item OID -> definition
        self.users: dict[str, _User] = {}
        self.sites: dict[str, str] = {}  # location OID -> site
        self.meanings: dict[str, str] = {}  # signature OID -> meaning
        self.first_recorded: date | None = None

    def saw(self, recorded_at: datetime) -> None:
        if self.first_recorded is None:
            self.first_recorded = recorded_at.date()

    def form(self, study_event: str, form_oid: str, name: str) -> None:
        self.forms.setdefault(study_event, {})[form_oid] = name

    def group(self, form_oid: str, group_oid: str, name: str) -> None:
        self.groups.setdefault(form_oid, {})[group_oid] = name

    def item(self, group_oid: str, item_oid: str, name: str, value: Any, text: str | None) -> None:
        definition = self.items.setdefault(group_oid, {}).setdefault(item_oid, _ItemDef(name))
        if text is not None:
            definition.data_type = _merged(definition.data_type, _data_type(value))
            definition.length = max(definition.length, len(text))

    def user(self, login: str, role: str, full_name: str | None = None) -> str:
        oid = f"USR.{role}.{login}"
        user = self.users.setdefault(oid, _User(login, role))
        if full_name:
            user.full_name = str(full_name)
        return oid

    def location(self, site: str | None) -> str:
        if not site:
            return LEDGER_LOCATION
        oid = f"LOC.{site}"
        self.sites[oid] = site
        return oid

    def signature(self, meaning: str) -> str:
        oid = f"SD.{meaning}"
        self.meanings[oid] = meaning
        return oid

    def study(self, context: OdmContext) -> Element:
        study = _element("Study", OID=context.study_oid)
        names = _child(study, "GlobalVariables")
        _child(names, "StudyName", text=context.study_oid)
        _child(names, "StudyDescription", text=context.study_title)
        _child(names, "ProtocolName", text=context.study_oid)
        mdv = _child(study, "MetaDataVersion", OID=METADATA_VERSION, Name="trial-ledger audit trail",
                     Description="The ledger's entries: one form per event type, one item per field")
        protocol = _child(mdv, "Protocol")
        for study_event in self.forms:
            _child(protocol, "StudyEventRef", StudyEventOID=study_event, Mandatory="No")
        for study_event, forms in self.forms.items():
            definition = _child(mdv, "StudyEventDef", OID=study_event, Name=STUDY_EVENTS.get(study_event, study_event), Repeating="No", Type="Common")
            for form_oid in forms:
                _child(definition, "FormRef", FormOID=form_oid, Mandatory="No")
        for form_oid, name in {oid: name for forms in self.forms.values() for oid, name in forms.items()}.items():
            definition = _child(mdv, "FormDef", OID=form_oid, Name=name, Repeating="Yes")
            for group_oid in self.groups.get(form_oid, {}):
                _child(definition, "ItemGroupRef", ItemGroupOID=group_oid, Mandatory="No")
        group_names = {oid: name for groups in self.groups.values() for oid, name in groups.items()}
        for group_oid, name in group_names.items():
            definition = _child(mdv, "ItemGroupDef", OID=group_oid, Name=name, Repeating="No")
            for item_oid in self.items.get(group_oid, {}):
                _child(definition, "ItemRef", ItemOID=item_oid, Mandatory="No")
        for group_oid in group_names:
            for item_oid, item in self.items.get(group_oid, {}).items():
                data_type = item.data_type or "text"
                attributes = {"Length": str(item.length)} if data_type in ("text", "integer", "float") else {}
                if group_oid == ENVELOPE_GROUP:
                    attributes["Comment"] = ENVELOPE_ITEMS[item.name]
                _child(mdv, "ItemDef", OID=item_oid, Name=item.name, DataType=data_type, **attributes)
        return study

    def admin(self, context: OdmContext) -> Element:
        admin = _element("AdminData", StudyOID=context.study_oid)
        for oid, user in sorted(self.users.items()):
            definition = _child(admin, "User", OID=oid, **_user_type(user.role))
            _child(definition, "LoginName", text=user.login)
            _child(definition, "DisplayName", text=f"{user.login} ({user.role})")
            if user.full_name:
                _child(definition, "FullName", text=user.full_name)
        effective = (self.first_recorded or context.created_at.date()).isoformat()
        locations = {LEDGER_LOCATION: ("trial-ledger (no site recorded)", "Sponsor"), **{oid: (site, "Site") for oid, site in sorted(self.sites.items())}}
        for oid, (name, location_type) in locations.items():
            location = _child(admin, "Location", OID=oid, Name=name, LocationType=location_type)
            _child(location, "MetaDataVersionRef", StudyOID=context.study_oid, MetaDataVersionOID=METADATA_VERSION, EffectiveDate=effective)
        for oid, meaning in sorted(self.meanings.items()):
            definition = _child(admin, "SignatureDef", OID=oid, Methodology="Electronic")
            _child(definition, "Meaning", text=meaning)
            _child(definition, "LegalReason", text=LEGAL_REASON)
        return admin


def _subject(row: Mapping[str, Any]) -> tuple[str, str]:
    """The subject key and study event of an entry: its patient, else its stratum."""
    if row["patient_id"] is not None:
        return row["patient_id"], "SE.COURSE"
    return f"STRATUM:{row['stratum']}", "SE.ESCALATION"


def _user_type(role: str) -> dict[str, str]:
    return {"UserType": {"investigator": "Investigator", "sponsor": "Sponsor"}.get(role, "Other")}


def _value(value: Any) -> str | None:
    """An item's ``Value``: text as it is, true/false, numbers and lists as JSON, dates in ISO 8601."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return json.dumps(value)


def _data_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, datetime) or (isinstance(value, str) and _DATETIME.fullmatch(value)):
        return "datetime"
    if isinstance(value, date) or (isinstance(value, str) and _DATE.fullmatch(value)):
        return "date"
    return "text"


def _merged(seen: str | None, new: str) -> str:
    if seen is None or seen == new:
        return new
    return "float" if {seen, new} == {"integer", "float"} else "text"


def _timestamp(value: datetime) -> str:
    return value.isoformat()


def _ncname(text: str) -> str:
    return _NOT_NCNAME.sub("_", text)


def _clean(text: str) -> str:
    """Text XML can carry: a character XML 1.0 forbids is written as its code, ``\\u0001``."""
    return _NOT_XML.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _element(tag: str, text: str | None = None, **attributes: str) -> Element:
    element = Element(tag, {name: _clean(value) for name, value in attributes.items()})
    if text is not None:
        element.text = _clean(text)
    return element


def _child(parent: Element, tag: str, text: str | None = None, **attributes: str) -> Element:
    element = _element(tag, text, **attributes)
    parent.append(element)
    return element


def _attr(value: str) -> str:
    return quoteattr(_clean(value))


def _xml(element: Element, level: int) -> str:
    indent(element, space="  ", level=level)
    return "  " * level + tostring(element, encoding="unicode").rstrip() + "\n"


def _header(context: OdmContext) -> str:
    attributes = {
        "xmlns": ODM_NAMESPACE,
        "ODMVersion": "1.3.2",
        "FileType": "Transactional",
        "Archival": "Yes",
        "FileOID": context.file_oid,
        "CreationDateTime": _timestamp(context.created_at),
        "AsOfDateTime": _timestamp(context.as_of or context.created_at),
        "Originator": "trial-ledger",
        "SourceSystem": "trial-ledger",
    }
    if context.description:
        attributes["Description"] = context.description
    rendered = "".join(f"\n     {name}={_attr(value)}" for name, value in attributes.items())
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<ODM{rendered}>\n'
