"""The definitions an ODM file must hold for the OIDs its transactions reference: ``Study`` and ``AdminData``.

``Definitions`` is told of each form, item group, item, user, site and signature meaning as the
transactions use them, and writes only those: every OID the file references is defined in it,
and nothing else is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from xml.etree.ElementTree import Element

from ledger.audit.odm.elements import child, element

METADATA_VERSION = "MDV.AUDIT"
LEDGER_LOCATION = "LOC.LEDGER"
ENVELOPE_GROUP = "IG.ENTRY"
LEGAL_REASON = "21 CFR 11.50"

#: the envelope items of ``IG.ENTRY``, with what an inspector reads on their definition
ENVELOPE_ITEMS = {
    "occurred_on": "valid time: the clinical date the entry is about (the recorded time is the audit record's DateTimeStamp)",
    "protocol_version": "the protocol version in force when the entry was recorded",
    "command_id": "the client's idempotency key of the command that recorded the entry",
}

STUDY_EVENTS = {"SE.COURSE": "Patient course", "SE.ESCALATION": "Dose escalation of a stratum"}

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")


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


class Definitions:
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
        """Note an entry's recorded time: the first is when the locations began using the metadata."""
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
        """The OID of ``login`` acting as ``role``; ``full_name`` is their printed name, the latest given."""
        oid = f"USR.{role}.{login}"
        user = self.users.setdefault(oid, _User(login, role))
        if full_name:
            user.full_name = str(full_name)
        return oid

    def location(self, site: str | None) -> str:
        """The OID of ``site``'s location, or of the ledger's when there is no site."""
        if not site:
            return LEDGER_LOCATION
        oid = f"LOC.{site}"
        self.sites[oid] = site
        return oid

    def signature(self, meaning: str) -> str:
        """The OID of the signature definition with this meaning."""
        oid = f"SD.{meaning}"
        self.meanings[oid] = meaning
        return oid

    def study(self, study_oid: str, title: str) -> Element:
        """``Study``: the study's names and a metadata version defining every form, group and item used."""
        study = element("Study", OID=study_oid)
        names = child(study, "GlobalVariables")
        child(names, "StudyName", text=study_oid)
        child(names, "StudyDescription", text=title)
        child(names, "ProtocolName", text=study_oid)
        mdv = child(study, "MetaDataVersion", OID=METADATA_VERSION, Name="trial-ledger audit trail",
                     Description="The ledger's entries: one form per event type, one item per field")
        protocol = child(mdv, "Protocol")
        for study_event in self.forms:
            child(protocol, "StudyEventRef", StudyEventOID=study_event, Mandatory="No")
        for study_event, forms in self.forms.items():
            definition = child(mdv, "StudyEventDef", OID=study_event, Name=STUDY_EVENTS.get(study_event, study_event), Repeating="No", Type="Common")
            for form_oid in forms:
                child(definition, "FormRef", FormOID=form_oid, Mandatory="No")
        for form_oid, name in {oid: name for forms in self.forms.values() for oid, name in forms.items()}.items():
            definition = child(mdv, "FormDef", OID=form_oid, Name=name, Repeating="Yes")
            for group_oid in self.groups.get(form_oid, {}):
                child(definition, "ItemGroupRef", ItemGroupOID=group_oid, Mandatory="No")
        group_names = {oid: name for groups in self.groups.values() for oid, name in groups.items()}
        for group_oid, name in group_names.items():
            definition = child(mdv, "ItemGroupDef", OID=group_oid, Name=name, Repeating="No")
            for item_oid in self.items.get(group_oid, {}):
                child(definition, "ItemRef", ItemOID=item_oid, Mandatory="No")
        for group_oid in group_names:
            for item_oid, item in self.items.get(group_oid, {}).items():
                data_type = item.data_type or "text"
                attributes = {"Length": str(item.length)} if data_type in ("text", "integer", "float") else {}
                if group_oid == ENVELOPE_GROUP:
                    attributes["Comment"] = ENVELOPE_ITEMS[item.name]
                child(mdv, "ItemDef", OID=item_oid, Name=item.name, DataType=data_type, **attributes)
        return study

    def admin(self, study_oid: str, created_at: datetime) -> Element:
        """``AdminData``: every user, location and signature definition referenced."""
        admin = element("AdminData", StudyOID=study_oid)
        for oid, user in sorted(self.users.items()):
            definition = child(admin, "User", OID=oid, **_user_type(user.role))
            child(definition, "LoginName", text=user.login)
            child(definition, "DisplayName", text=f"{user.login} ({user.role})")
            if user.full_name:
                child(definition, "FullName", text=user.full_name)
        effective = (self.first_recorded or created_at.date()).isoformat()
        locations = {LEDGER_LOCATION: ("trial-ledger (no site recorded)", "Sponsor"), **{oid: (site, "Site") for oid, site in sorted(self.sites.items())}}
        for oid, (name, location_type) in locations.items():
            location = child(admin, "Location", OID=oid, Name=name, LocationType=location_type)
            child(location, "MetaDataVersionRef", StudyOID=study_oid, MetaDataVersionOID=METADATA_VERSION, EffectiveDate=effective)
        for oid, meaning in sorted(self.meanings.items()):
            definition = child(admin, "SignatureDef", OID=oid, Methodology="Electronic")
            child(definition, "Meaning", text=meaning)
            child(definition, "LegalReason", text=LEGAL_REASON)
        return admin


def _user_type(role: str) -> dict[str, str]:
    return {"UserType": {"investigator": "Investigator", "sponsor": "Sponsor"}.get(role, "Other")}


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
