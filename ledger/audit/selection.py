"""Which audit rows an export holds: the filters, and the reads of ``rm_audit_trail`` behind them.

Rows are read from the audit-trail read model (one row per event, one per corrected field of a
correction), oldest first, streamed so that an export of the whole trial never holds it all in
memory. Each row is a plain dictionary with the table's columns; ``data`` is the event's own
fields, decoded from JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.engine import Engine

from ledger.encoding import plain
from ledger.projections.tables import read_model_tables

AuditRow = dict[str, Any]

_FETCH = 1000


def columns() -> tuple[str, ...]:
    """The columns of an audit row, in the table's order (the CSV header)."""
    return tuple(column.name for column in read_model_tables()["rm_audit_trail"].columns)


@dataclass(frozen=True)
class AuditFilter:
    """What to export; every filter left ``None`` (or empty) lets every row through.

    ``as_of`` is transaction time: only entries recorded at or before it, as an export made
    then would have shown. ``recorded_from`` (inclusive) and ``recorded_to`` (exclusive) bound
    ``recorded_at`` to a window, so consecutive windows never share a row.
    """

    patient_id: str | None = None
    user: str | None = None
    recorded_from: datetime | None = None
    recorded_to: datetime | None = None
    event_types: tuple[str, ...] = ()
    as_of: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """The filters as an export's JSON names them."""
        filters: dict[str, Any] = plain(
            {
                "patient": self.patient_id,
                "user": self.user,
                "from": self.recorded_from,
                "to": self.recorded_to,
                "type": list(self.event_types),
                "as_of": self.as_of,
            }
        )
        return filters

    def query(self) -> Select[Any]:
        table = read_model_tables()["rm_audit_trail"]
        query = select(table).order_by(table.c.position, table.c.seq)
        if self.patient_id is not None:
            query = query.where(table.c.patient_id == self.patient_id)
        if self.user is not None:
            query = query.where(table.c.recorded_by == self.user)
        if self.recorded_from is not None:
            query = query.where(table.c.recorded_at >= self.recorded_from)
        if self.recorded_to is not None:
            query = query.where(table.c.recorded_at < self.recorded_to)
        if self.event_types:
            query = query.where(table.c.event_type.in_(self.event_types))
        if self.as_of is not None:
            query = query.where(table.c.recorded_at <= self.as_of)
        return query


@contextmanager
def selected_rows(engine: Engine, filters: AuditFilter) -> Iterator[Iterator[AuditRow]]:
    """The rows ``filters`` let through, oldest first (position, then field), read as they are used."""
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=_FETCH).execute(filters.query())
        yield (_decoded(dict(row._mapping)) for row in result)


def _decoded(row: AuditRow) -> AuditRow:
    row["data"] = json.loads(row["data"])
    return row


def amended_event_types(engine: Engine) -> dict[str, str]:
    """The event type of every entry a correction or a void amends, by entry id."""
    table = read_model_tables()["rm_audit_trail"]
    amended = select(table.c.amends_entry_id).where(table.c.amends_entry_id.is_not(None)).distinct()
    query = select(table.c.entry_id, table.c.event_type).where(table.c.seq == 0, table.c.entry_id.in_(amended))
    with engine.connect() as connection:
        return {entry_id: event_type for entry_id, event_type in connection.execute(query)}


def patient_sites(engine: Engine, as_of: datetime | None = None) -> dict[str, str]:
    """Each patient's site as recorded by ``as_of``: the enrollment's, or its latest correction's."""
    table = read_model_tables()["rm_audit_trail"]
    enrollments = select(table.c.entry_id, table.c.patient_id, table.c.data).where(table.c.event_type == "PatientEnrolled")
    corrections = (
        select(table.c.amends_entry_id, table.c.data)
        .where(table.c.event_type == "EntryCorrected", table.c.field == "site")
        .order_by(table.c.position)
    )
    if as_of is not None:
        enrollments = enrollments.where(table.c.recorded_at <= as_of)
        corrections = corrections.where(table.c.recorded_at <= as_of)
    with engine.connect() as connection:
        enrolled = {entry_id: (patient_id, json.loads(data).get("site")) for entry_id, patient_id, data in connection.execute(enrollments)}
        for amends, data in connection.execute(corrections):
            if amends in enrolled:
                enrolled[amends] = (enrolled[amends][0], json.loads(data)["changes"]["site"])
    return {patient_id: str(site) for patient_id, site in enrolled.values() if patient_id is not None and site not in (None, "")}
