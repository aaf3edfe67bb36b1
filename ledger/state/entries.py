"""Which entries count: corrections applied to their targets, voids dropped, bitemporally.

``effective_entries`` keeps the entries recorded at or before ``as_of`` (transaction time)
with each correction applied to the entry it amends and each voided entry dropped;
``valid_entries`` keeps what is dated on or before ``valid_on`` (valid time), in clinical-date
order.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from ledger.domain.escalation import EscalationDecided, PatientAssignedToDoseLevel
from ledger.domain.events import ProtocolDeviationRecorded
from ledger.domain.patient import FACT_EVENTS, EntryCorrected, EntryVoided
from ledger.domain.values import Entry

AMENDMENTS = (EntryCorrected.__name__, EntryVoided.__name__)
DATE_FIELDS: dict[str, str] = {
    name: cls.date_field for name, cls in FACT_EVENTS.items() if cls.date_field is not None
}
DATE_FIELDS[EscalationDecided.__name__] = "decided_on"
DATE_FIELDS[PatientAssignedToDoseLevel.__name__] = "assigned_on"


def effective_entries(entries: list[Entry], as_of: datetime | None = None) -> list[Entry]:
    """The facts known at ``as_of``, each as last corrected, without voided ones.

    Corrections and voids themselves are not in the result: they act on their targets. A
    deviation whose fact was voided goes with it.
    """
    known = [e for e in entries if as_of is None or e.recorded_at <= as_of]
    current: dict[str, Entry] = {e.entry_id: e for e in known if e.kind not in AMENDMENTS}
    voided: set[str] = set()
    for amendment in (e for e in known if e.kind in AMENDMENTS):
        target_id = amendment.data["amends_entry_id"]
        if target_id not in current:
            continue
        if amendment.kind == EntryVoided.__name__:
            voided.add(target_id)
        else:
            current[target_id] = corrected(current[target_id], amendment.data["changes"])
    # a deviation goes with its fact when the fact is voided, also when it was recorded with a correction of it
    gone = voided | {e.entry_id for e in known if e.kind == EntryCorrected.__name__ and e.data["amends_entry_id"] in voided}
    return [
        e
        for e in current.values()
        if e.entry_id not in voided and not (e.kind == ProtocolDeviationRecorded.__name__ and e.data["deviating_entry_id"] in gone)
    ]


def corrected(entry: Entry, changes: dict[str, Any]) -> Entry:
    """The entry with the given fields changed; its valid time follows its date field."""
    data = {**entry.data, **changes}
    date_field = DATE_FIELDS.get(entry.kind)
    occurred_on = data[date_field] if date_field else entry.occurred_on
    return replace(entry, data=data, occurred_on=occurred_on)


def valid_entries(entries: list[Entry], valid_on: date | None) -> list[Entry]:
    """Entries dated on or before ``valid_on``, in clinical-date order (ties: recorded order)."""
    kept = [e for e in entries if valid_on is None or e.occurred_on <= valid_on]
    return sorted(kept, key=lambda e: (e.occurred_on, e.recorded_at, e.version))


def plain_value(v: Any) -> Any:
    """The plain value of a vocabulary member (``Enum``) or the value itself."""
    return getattr(v, "value", v)
