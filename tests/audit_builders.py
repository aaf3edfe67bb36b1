"""Audit rows as the read model holds them, built in memory, for unit tests of the export writers.

``trail = Trail()`` then ``trail.add(entry, patient_id=..., stratum=...)`` for each entry in
recorded order (entries from ``tests.builders.Course`` or made with ``entry(...)``);
``trail.rows`` are the rows ``ledger.projections.rows.audit_rows`` gives, ``data`` decoded.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

from ledger.domain.values import Entry
from ledger.projections.rows import AUDIT_COLUMNS, audit_rows


class Trail:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.position = 0

    def add(self, entry: Entry, patient_id: str | None = None, stratum: str | None = "default") -> Entry:
        self.position += 1
        for values in audit_rows(self.position, entry, patient_id, stratum):
            row = dict(zip(AUDIT_COLUMNS, values, strict=True))
            self.rows.append({**row, "data": json.loads(row["data"])})
        return entry


def entry(kind: str, at: datetime, data: dict[str, Any], on: str = "2016-03-01", by: str = "dr.jain", role: str = "investigator", **envelope: Any) -> Entry:
    """An entry of any event type, as the domain's ``as_entry`` gives it (for events this branch does not define)."""
    fields: dict[str, Any] = {"reason": None, "source": None, "protocol_version": "1.0", "command_id": None, **envelope}
    return Entry(
        entry_id=str(uuid.uuid4()), kind=kind, version=1, occurred_on=date.fromisoformat(on), recorded_at=at,
        recorded_by=by, role=role, data=data, **fields,
    )


def signed(
    at: datetime, scope: str, meaning: str = "reviewed", cycle: int | None = None, signer: str = "dr.jain", printed_name: str = "Asha Jain, MD"
) -> Entry:
    """A ``RecordSigned`` entry (21 CFR 11.50): who signed, their printed name, the meaning, what, and the state's hash."""
    data = {"signer": signer, "printed_name": printed_name, "meaning": meaning, "scope": scope, "cycle": cycle, "state_hash": "ab" * 32}
    return entry("RecordSigned", at, data, by=signer)
