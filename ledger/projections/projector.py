"""Keep the read models current, exactly once, and rebuild them from the first event.

Catch-up polls the notification log (push subscriptions do not exist for SQLite): in one
transaction it locks the projection's row of ``ledger_projections``, reads its position,
applies the next events and writes their rows together with the new position. Two
projectors never apply the same events (the lock), and a crash loses nothing (the rows and
the position commit together). Applying is idempotent besides: audit rows of a position range
are replaced, a patient's rows are rewritten from their whole course.

Rebuild fills ``<table>_rebuild`` tables from the first event, then, in one transaction,
drops the live tables, renames the new ones into place, recreates the indexes and sets the
position: readers see the old tables or the new ones, never a half-built one.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import Notification
from sqlalchemy import Connection, Index, Table, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ledger.application import TrialLedger
from ledger.domain.escalation import EscalationDecided
from ledger.domain.events import LedgerEvent
from ledger.domain.patient import Patient, PatientEnrolled
from ledger.domain.values import Entry
from ledger.persistence import EntryRow
from ledger.projections.bulk import bulk_insert
from ledger.projections.rows import audit_rows, decision_row, patient_rows
from ledger.projections.tables import INDEXES, PROJECTIONS, TABLES, ReadModelTables, read_model_tables

BATCH = 1000
REBUILD = "_rebuild"
Progress = Callable[[int, int], None]  # (position reached, last position)


class Projector:
    def __init__(self, ledger: TrialLedger, projections: Sequence[str] = PROJECTIONS, batch: int = BATCH) -> None:
        unknown = sorted(set(projections) - set(PROJECTIONS))
        if unknown:
            raise ValueError(f"unknown projection {unknown[0]!r}; one of {', '.join(PROJECTIONS)}")
        self.ledger = ledger
        self.projections = tuple(projections)
        self.batch = batch
        self.live = read_model_tables()
        self.tracking = self.live.metadata.tables["ledger_projections"]

    # --- catch-up -----------------------------------------------------------------------

    def catch_up(self, on_progress: Progress | None = None) -> int:
        """Apply every event recorded since each projection's position; how many were applied."""
        applied = 0
        for projection in self.projections:
            while True:
                count = self._apply_next(projection, on_progress)
                applied += count
                if count == 0:
                    break
        return applied

    def follow(self, interval: float = 1.0, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Catch up, then poll for new events every ``interval`` seconds until told to stop."""
        while not should_stop():
            if self.catch_up() == 0:
                time.sleep(interval)

    def position(self, projection: str) -> int:
        with self.ledger.engine.connect() as connection:
            return int(connection.execute(select(self.tracking.c.position).where(self.tracking.c.projection == projection)).scalar() or 0)

    def _apply_next(self, projection: str, on_progress: Progress | None) -> int:
        with self.ledger.engine.begin() as connection:
            start = self._lock(connection, projection)
            notifications = self._notifications(connection, start + 1, self.batch)
            if not notifications:
                return 0
            last = notifications[-1].id
            self._apply(connection, self.live, projection, notifications)
            connection.execute(update(self.tracking).where(self.tracking.c.projection == projection).values(position=last))
        if on_progress is not None:
            on_progress(last, self.ledger.recorder.max_notification_id() or last)
        return len(notifications)

    def _lock(self, connection: Connection, projection: str) -> int:
        """Hold the projection's tracking row for this transaction and return its position.

        On SQLite the whole database is locked for writing (call first in a transaction).
        """
        if connection.dialect.name == "sqlite" and not self._sqlite_write_locked(connection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        query = select(self.tracking.c.position).where(self.tracking.c.projection == projection).with_for_update()
        row = connection.execute(query).first()
        if row is None:  # a first catch-up; another process's may be inserting the same row at this moment
            new_row = (pg_insert if connection.dialect.name == "postgresql" else sqlite_insert)(self.tracking)
            connection.execute(new_row.values(projection=projection, position=0).on_conflict_do_nothing())
            row = connection.execute(query).one()
        return int(row[0])

    @staticmethod
    def _sqlite_write_locked(connection: Connection) -> bool:
        """Has this transaction begun on the driver's connection (by an earlier BEGIN IMMEDIATE)?"""
        return bool(connection.connection.dbapi_connection.in_transaction)  # type: ignore[union-attr]

    def _notifications(self, connection: Connection, start: int, limit: int, stop: int | None = None) -> list[Notification]:
        """The next events of the log from ``start``, in order (the driver's rows: no ORM objects, no type processing)."""
        sqlite = connection.dialect.name == "sqlite"
        mark = "?" if sqlite else "%s"
        sql = (f"SELECT id, originator_id, originator_version, topic, state FROM {self.ledger.recorder.events_table_name} "
               f"WHERE id >= {mark}" + (f" AND id <= {mark}" if stop is not None else "") + f" ORDER BY id LIMIT {int(limit)}")
        cursor = connection.connection.cursor()
        try:
            cursor.execute(sql, (start,) if stop is None else (start, stop))
            rows = cursor.fetchall()
        finally:
            cursor.close()
        as_uuid = _uuid_of_bytes if sqlite else _uuid_of
        return [
            Notification(id=i, originator_id=as_uuid(originator_id), originator_version=version, topic=topic, state=bytes(state))
            for i, originator_id, version, topic, state in rows
        ]

    def _decode(self, notifications: list[Notification]) -> list[tuple[int, LedgerEvent]]:
        return [(n.id, cast(LedgerEvent, self.ledger.store.mapper.to_domain_event(n))) for n in notifications]

    def _apply(self, connection: Connection, tables: ReadModelTables, projection: str, notifications: list[Notification]) -> None:
        decoded = self._decode(notifications)
        if projection == "audit_trail":
            self._write_audit(connection, tables, [(pos, ev.as_entry()) for pos, ev in decoded])
            return
        touched: dict[UUID, int] = {}
        for _, ev in decoded:
            if isinstance(ev, EscalationDecided):
                row = decision_row(ev.as_entry(), self._stratum_of(connection, ev.originator_id))
                _replace(connection, tables["rm_escalation_decisions"], "entry_id", [ev.entry_id], [row])
            touched[ev.originator_id] = ev.originator_version
        for aggregate_id, version in touched.items():
            aggregate: object = self.ledger.store.repository.get(aggregate_id, version=version)
            if isinstance(aggregate, Patient):
                self._write_patient(connection, tables, aggregate.patient_id, aggregate.entries)

    def _write_audit(self, connection: Connection, tables: ReadModelTables, entries: list[tuple[int, Entry]]) -> None:
        """The audit rows of a range of positions, replacing any written before."""
        first, last = entries[0][0], entries[-1][0]
        owners = self._owners(connection, first, last)
        table = tables["rm_audit_trail"]
        connection.execute(delete(table).where(table.c.position.between(first, last)))
        _insert(connection, table, [row for pos, entry in entries for row in audit_rows(pos, entry, *owners.get(pos, (None, None)))])

    def _write_patient(self, connection: Connection, tables: ReadModelTables, patient_id: str, entries: list[Entry]) -> None:
        rows = patient_rows(patient_id, entries, self.ledger.protocol)
        for name in TABLES["patients"]:
            if name != "rm_escalation_decisions":
                _replace(connection, tables[name], "patient_id", [patient_id], rows.get(name, []))

    def _owners(self, connection: Connection, first: int, last: int) -> dict[int, tuple[str | None, str | None]]:
        rows = connection.execute(
            select(EntryRow.position, EntryRow.patient_id, EntryRow.stratum).where(EntryRow.position.between(first, last))
        ).tuples()
        return {pos: (pid, stratum) for pos, pid, stratum in rows}

    def _stratum_of(self, connection: Connection, aggregate_id: UUID) -> str:
        return str(connection.execute(select(EntryRow.stratum).where(EntryRow.aggregate_id == str(aggregate_id)).limit(1)).scalar())

    # --- rebuild ------------------------------------------------------------------------

    def rebuild(self, on_progress: Progress | None = None) -> int:
        """Rebuild the projections from the first event and swap them in; events applied."""
        fresh = read_model_tables(REBUILD)
        engine = self.ledger.engine
        for projection in self.projections:
            with engine.begin() as connection:
                for table in reversed(fresh.of(projection)):
                    table.drop(connection, checkfirst=True)
                for table in fresh.of(projection):
                    table.create(connection)
        last = self._fill(fresh, on_progress)
        with engine.begin() as connection:
            for projection in self.projections:
                self._lock(connection, projection)
                self._swap(connection, projection, fresh)
                connection.execute(
                    update(self.tracking).where(self.tracking.c.projection == projection).values(position=last, rebuilt_at=self.ledger.clock.now())
                )
        return last

    def _fill(self, fresh: ReadModelTables, on_progress: Progress | None) -> int:
        """Apply every event to the fresh tables, a transaction per batch; the last position."""
        end = self.ledger.recorder.max_notification_id() or 0
        courses: dict[UUID, list[Entry]] = defaultdict(list)
        patient_ids: dict[UUID, str] = {}
        position = 0
        with self.ledger.engine.connect() as connection:
            while position < end:
                notifications = self._notifications(connection, position + 1, self.batch, stop=end)
                connection.rollback()  # end the read's implicit transaction
                if not notifications:
                    break
                decoded = [(pos, ev, ev.as_entry()) for pos, ev in self._decode(notifications)]
                with connection.begin():
                    if "audit_trail" in self.projections:
                        self._write_audit(connection, fresh, [(pos, entry) for pos, _, entry in decoded])
                    if "patients" in self.projections:
                        self._collect(connection, fresh, decoded, courses, patient_ids)
                position = notifications[-1].id
                if on_progress is not None:
                    on_progress(position, end)
            with connection.begin():
                for aggregate_id, patient_id in patient_ids.items():
                    for name, rows in patient_rows(patient_id, courses[aggregate_id], self.ledger.protocol).items():
                        _insert(connection, fresh[name], rows)
        return position

    def _collect(
        self, connection: Connection, fresh: ReadModelTables, decoded: list[tuple[int, LedgerEvent, Entry]],
        courses: dict[UUID, list[Entry]], patient_ids: dict[UUID, str],
    ) -> None:
        """Gather each patient's course in memory; decisions go straight to their table."""
        for _, ev, entry in decoded:
            if isinstance(ev, EscalationDecided):
                _insert(connection, fresh["rm_escalation_decisions"], [decision_row(entry, self._stratum_of(connection, ev.originator_id))])
            elif isinstance(ev, PatientEnrolled):
                patient_ids[ev.originator_id] = ev.patient_id
            courses[ev.originator_id].append(entry)

    def _swap(self, connection: Connection, projection: str, fresh: ReadModelTables) -> None:
        for table in reversed(self.live.of(projection)):
            table.drop(connection, checkfirst=True)
        for name in TABLES[projection]:
            connection.execute(text(f"ALTER TABLE {fresh[name].name} RENAME TO {name}"))
        create_indexes(connection, self.live, [name for name in TABLES[projection]])


def _uuid_of_bytes(value: bytes) -> UUID:
    return UUID(bytes=bytes(value))


def _uuid_of(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def create_indexes(connection: Connection, tables: ReadModelTables, names: Iterable[str]) -> None:
    for table_name, columns in INDEXES:
        if table_name in names:
            table = tables[table_name]
            Index(f"ix_{table_name}_{'_'.join(columns)}", *(table.c[c] for c in columns)).create(connection, checkfirst=True)


def _insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    bulk_insert(connection, table, rows)


def _replace(connection: Connection, table: Table, key: str, values: list[Any], rows: list[dict[str, Any]]) -> None:
    connection.execute(delete(table).where(table.c[key].in_(values)))
    _insert(connection, table, rows)


def rebuilt_at(ledger: TrialLedger, projection: str) -> datetime | None:
    tracking = read_model_tables().metadata.tables["ledger_projections"]
    with ledger.engine.connect() as connection:
        return connection.execute(select(tracking.c.rebuilt_at).where(tracking.c.projection == projection)).scalar()
