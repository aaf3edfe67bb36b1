"""Keep the read models current, exactly once, and rebuild them from the first event.

Catch-up polls the notification log (push subscriptions do not exist for SQLite): in one
transaction it locks the projection's row of ``ledger_projections``, reads its position,
applies the next events and writes their rows together with the new position. Two
projectors never apply the same events (the lock), and a crash loses nothing (the rows and
the position commit together). Applying is idempotent besides: audit rows of a position range
are replaced, a patient's rows are rewritten from their whole course.

Rebuild fills ``<table>_rebuild`` tables from the first event, then, in one transaction,
drops the live tables, renames the new ones into place, recreates the indexes and sets the
position: readers see the old tables or the new ones, never a half-built one. While filling,
each event is decoded once and its audit rows are written with its page; each patient's
course is gathered in memory and folded once, at the end. The fresh tables' commits do not
wait for the disk; the swap's does, and so makes all of them durable.
"""

from __future__ import annotations

import gc
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple, cast
from uuid import UUID

from sqlalchemy import Connection, Index, Table, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ledger.application import TrialLedger
from ledger.domain.escalation import EscalationDecided
from ledger.domain.events import LedgerEvent
from ledger.domain.patient import Patient, PatientEnrolled
from ledger.domain.values import Entry
from ledger.eventlog import decoder, event_rows_between, fetch
from ledger.persistence import EntryRow
from ledger.projections.bulk import bulk_insert, insert_rows
from ledger.projections.rows import AUDIT_COLUMNS, audit_rows, decision_row, patient_rows
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
            page = self._read(connection, start + 1, self.batch)
            if not page:
                return 0
            last = page[-1].position
            self._apply(connection, self.live, projection, page)
            connection.execute(update(self.tracking).where(self.tracking.c.projection == projection).values(position=last))
        if on_progress is not None:
            on_progress(last, self.ledger.recorder.max_notification_id() or last)
        return len(page)

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

    def _read(self, connection: Connection, start: int, limit: int, stop: int | None = None) -> list[Recorded]:
        """The next events of the log from ``start`` (to ``stop``), in order, decoded, each with its ``ledger_entries`` owners.

        Two selects of a range of the primary keys: the events, then their owners.
        """
        rows = event_rows_between(connection, self.ledger.store, start, stop, limit)
        if not rows:
            return []
        entries = fetch(connection, f"SELECT position, patient_id, stratum FROM {EntryRow.__tablename__} WHERE position BETWEEN {{}} AND {{}}",
                        (rows[0][0], rows[-1][0]))
        owners = {position: (patient_id, stratum) for position, patient_id, stratum in entries}
        decode = decoder(connection, self.ledger.store)
        recorded = []
        for row in rows:
            position, event = decode(row)
            patient_id, stratum = owners.get(position, (None, None))
            recorded.append(Recorded(position, event, patient_id, stratum))
        return recorded

    def _apply(self, connection: Connection, tables: ReadModelTables, projection: str, page: list[Recorded]) -> None:
        if projection == "audit_trail":
            self._write_audit(connection, tables, [(r, r.event.as_entry()) for r in page])
            return
        touched: dict[UUID, int] = {}
        for r in page:
            ev = r.event
            if isinstance(ev, EscalationDecided):
                row = decision_row(ev.as_entry(), cast(str, r.stratum))
                _replace(connection, tables["rm_escalation_decisions"], "entry_id", [ev.entry_id], [row])
            touched[ev.originator_id] = ev.originator_version
        for aggregate_id, version in touched.items():
            aggregate: object = self.ledger.store.repository.get(aggregate_id, version=version)
            if isinstance(aggregate, Patient):
                self._write_patient(connection, tables, aggregate.patient_id, aggregate.entries)

    def _write_audit(self, connection: Connection, tables: ReadModelTables, entries: list[tuple[Recorded, Entry]]) -> None:
        """The audit rows of a range of positions, replacing any written before."""
        table = tables["rm_audit_trail"]
        connection.execute(delete(table).where(table.c.position.between(entries[0][0].position, entries[-1][0].position)))
        insert_rows(connection, table, AUDIT_COLUMNS, _audit(entries))

    def _write_patient(self, connection: Connection, tables: ReadModelTables, patient_id: str, entries: list[Entry]) -> None:
        rows = patient_rows(patient_id, entries, self.ledger.protocol)
        for name in TABLES["patients"]:
            if name != "rm_escalation_decisions":
                _replace(connection, tables[name], "patient_id", [patient_id], rows.get(name, []))

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
        """Apply every event to the fresh tables, a transaction per batch, then write each patient's
        rows from the whole course, folded once; the last position."""
        end = self.ledger.recorder.max_notification_id() or 0
        courses: dict[UUID, list[Entry]] = defaultdict(list)
        patient_ids: dict[UUID, str] = {}
        position = 0
        engine = self.ledger.engine
        # the log is read on one connection and the fresh tables written on another: each keeps its own pages cached
        with _without_cycle_collection(), engine.connect() as reading, engine.connect() as writing, _unsynced_commits(writing):
            while position < end:
                # a page is a range of positions (a gap in the log gives a shorter one): the planner's estimate cannot go wrong
                last = min(position + self.batch, end)
                page = self._read(reading, position + 1, self.batch, stop=last)
                reading.rollback()  # end the read's implicit transaction
                entries = [(r, r.event.as_entry()) for r in page]
                with writing.begin():
                    if "audit_trail" in self.projections:
                        insert_rows(writing, fresh["rm_audit_trail"], AUDIT_COLUMNS, _audit(entries))
                    if "patients" in self.projections:
                        self._collect(writing, fresh, entries, courses, patient_ids)
                position = last
                if on_progress is not None:
                    on_progress(position, end)
            tables: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for aggregate_id, patient_id in patient_ids.items():
                # each course freed once folded: none is left for the cycle collector to walk when it is back
                for name, rows in patient_rows(patient_id, courses.pop(aggregate_id), self.ledger.protocol).items():
                    tables[name] += rows
            with writing.begin():
                for name, rows in tables.items():
                    bulk_insert(writing, fresh[name], rows)
        return position

    @staticmethod
    def _collect(
        connection: Connection, fresh: ReadModelTables, entries: list[tuple[Recorded, Entry]], courses: dict[UUID, list[Entry]],
        patient_ids: dict[UUID, str],
    ) -> None:
        """Gather each patient's course in memory (its enrollment comes first); decisions go straight to their table."""
        decisions = []
        for r, entry in entries:
            ev = r.event
            if isinstance(ev, EscalationDecided):
                decisions.append(decision_row(entry, cast(str, r.stratum)))
            elif isinstance(ev, PatientEnrolled):
                patient_ids[ev.originator_id] = ev.patient_id
            if ev.originator_id in patient_ids:
                courses[ev.originator_id].append(entry)
        bulk_insert(connection, fresh["rm_escalation_decisions"], decisions)

    def _swap(self, connection: Connection, projection: str, fresh: ReadModelTables) -> None:
        for table in reversed(self.live.of(projection)):
            table.drop(connection, checkfirst=True)
        for name in TABLES[projection]:
            connection.execute(text(f"ALTER TABLE {fresh[name].name} RENAME TO {name}"))
        create_indexes(connection, self.live, [name for name in TABLES[projection]])


class Recorded(NamedTuple):
    """An event of the log, decoded, with the patient and stratum its entry is indexed under (``ledger_entries``)."""

    position: int
    event: LedgerEvent
    patient_id: str | None
    stratum: str | None


def _audit(entries: list[tuple[Recorded, Entry]]) -> list[tuple[Any, ...]]:
    return [row for r, entry in entries for row in audit_rows(r.position, entry, r.patient_id, r.stratum)]


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Hold Python's cycle collector off while the courses pile up in memory.

    A rebuild keeps every patient's course until its end, an ``Entry`` per event; each full
    pass of the collector walks all of them again, and as they grow there are a dozen such
    passes (a sixth of a 250k-event rebuild). Nothing the rebuild makes needs the collector:
    reference counting frees it as it goes.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _unsynced_commits(connection: Connection) -> Iterator[None]:
    """Commit the fresh tables' batches without waiting for the disk.

    SQLite (WAL) with ``synchronous = NORMAL``, PostgreSQL with ``synchronous_commit = off``: a
    crash may lose the last batches, never corrupt the database, and the next rebuild drops an
    unfinished one's tables anyway. The swap commits with the usual sync, which makes everything
    before it durable too.
    """
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        previous = connection.exec_driver_sql("PRAGMA synchronous").scalar_one()
        connection.exec_driver_sql("PRAGMA synchronous = NORMAL")
    else:
        connection.exec_driver_sql("SET synchronous_commit = off")
    connection.commit()
    try:
        yield
    finally:
        connection.rollback()
        connection.exec_driver_sql(f"PRAGMA synchronous = {int(previous)}" if sqlite else "RESET synchronous_commit")
        connection.commit()


def create_indexes(connection: Connection, tables: ReadModelTables, names: Iterable[str]) -> None:
    for table_name, columns in INDEXES:
        if table_name in names:
            table = tables[table_name]
            Index(f"ix_{table_name}_{'_'.join(columns)}", *(table.c[c] for c in columns)).create(connection, checkfirst=True)


def _replace(connection: Connection, table: Table, key: str, values: list[Any], rows: list[dict[str, Any]]) -> None:
    connection.execute(delete(table).where(table.c[key].in_(values)))
    bulk_insert(connection, table, rows)


def rebuilt_at(ledger: TrialLedger, projection: str) -> datetime | None:
    tracking = read_model_tables().metadata.tables["ledger_projections"]
    with ledger.engine.connect() as connection:
        return connection.execute(select(tracking.c.rebuilt_at).where(tracking.c.projection == projection)).scalar()
