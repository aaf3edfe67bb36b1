"""``ledger audit export``: the audit trail as a data file an inspector can search and sort.

``export(ledger, format, filters, out)`` is the one entry point: it selects the rows, writes
them as CSV, JSON or CDISC ODM 1.3.2, and returns an ``ExportResult`` (how many entries and
rows, under which filters, when) — what a caller records about the export itself. The writers
take rows, not the database, so each can be used and tested on its own.

CSV and JSON hold one row per audit row: one per entry, one per corrected field of a
correction (EMA 2023 §6.2.1, FDA Q12: a complete, searchable, sortable export).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TextIO

from ledger.application import TrialLedger
from ledger.audit.odm import OdmContext, write_odm
from ledger.audit.selection import AuditFilter, AuditRow, amended_event_types, columns, patient_sites, selected_rows
from ledger.domain.access import AuditExported
from ledger.domain.values import Actor
from ledger.encoding import plain

FORMATS = ("csv", "json", "odm")


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote: ``entries`` distinct ledger entries in ``rows`` audit rows."""

    format: str
    filters: AuditFilter
    exported_at: datetime
    entries: int
    rows: int


def export(ledger: TrialLedger, format: str, filters: AuditFilter, out: TextIO) -> ExportResult:
    """Write the audit rows ``filters`` select to ``out`` in ``format`` (one of ``FORMATS``)."""
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; one of {', '.join(FORMATS)}")
    exported_at = ledger.clock.now()
    with selected_rows(ledger.engine, filters) as selected:
        rows = _Counted(selected)
        if format == "csv":
            write_csv(rows, out)
        elif format == "json":
            write_json(rows, out, {"study": ledger.protocol.trial_id, "exported_at": exported_at, "filters": filters.as_dict()})
        else:
            write_odm(rows, out, odm_context(ledger, filters, exported_at))
    return ExportResult(format, filters, exported_at, rows.entries, rows.rows)


def odm_context(ledger: TrialLedger, filters: AuditFilter, exported_at: datetime) -> OdmContext:
    """The study, the file's identity, and the patients' sites and amended entries from the whole trail."""
    study = ledger.protocol.trial_id
    described = ", ".join(f"{name}={value}" for name, value in filters.as_dict().items() if value not in (None, []))
    return OdmContext(
        study_oid=study,
        study_title=ledger.protocol.title,
        file_oid=f"{study}.AUDIT.{exported_at.strftime('%Y%m%dT%H%M%S%fZ')}",
        created_at=exported_at,
        as_of=filters.as_of,
        description=f"Audit trail of {study}" + (f" ({described})" if described else ""),
        sites=patient_sites(ledger.engine, filters.as_of),
        amended=amended_event_types(ledger.engine),
    )


def write_csv(rows: Iterable[AuditRow], out: TextIO) -> None:
    """A header, then one line per audit row; ``data`` as a JSON object, times in ISO 8601."""
    header = columns()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(name, row[name]) for name in header])


def write_json(rows: Iterable[AuditRow], out: TextIO, head: Mapping[str, Any]) -> None:
    """``{**head, "entries": [row, ...], "count": n}``, written row by row."""
    out.write("{\n")
    for name, value in head.items():
        out.write(f"  {json.dumps(name)}: {json.dumps(plain(value))},\n")
    out.write('  "entries": [')
    count = 0
    for row in rows:
        out.write(("," if count else "") + "\n    " + json.dumps(plain(row)))
        count += 1
    out.write(("\n  " if count else "") + f'],\n  "count": {count}\n}}\n')


def _cell(name: str, value: Any) -> Any:
    if value is None:
        return ""
    if name == "data":
        return json.dumps(plain(value), sort_keys=True)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


class _Counted:
    """The rows as they pass, counting them and the distinct entries (positions) among them."""

    def __init__(self, rows: Iterator[AuditRow]) -> None:
        self._rows = rows
        self.rows = 0
        self.entries = 0
        self._last: int | None = None

    def __iter__(self) -> Iterator[AuditRow]:
        for row in self._rows:
            self.rows += 1
            if row["position"] != self._last:
                self.entries += 1
                self._last = row["position"]
            yield row


def record_export(ledger: TrialLedger, result: ExportResult, actor: Actor) -> str:
    """Record the export itself (``AuditExported``: format, filters, entries), by whoever made it; the entry id."""
    return ledger.record_access(AuditExported, actor, export_format=result.format, filters=result.filters.as_dict(), entries=result.entries)
