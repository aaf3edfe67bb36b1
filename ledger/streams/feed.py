"""The feed: every committed event in commit order, by its position in the log (docs/streams.md).

A page is read in two steps. First the head: the last position committed now. Then the
entries after the consumer's position up to that head, through the filters, and their events.
Writers commit one at a time and in position order (``TrialLedger`` takes the store's write
lock before an id is drawn), so every position up to a committed head is either committed or
was never committed: a gap left by a rolled-back transaction is skipped for good, and an event
committed later always has a higher position than the head a consumer has already been given.
An unfiltered page reads the window of positions ``after + 1 … after + limit`` (up to the head):
a range of the primary key, whatever the database's planner knows about the tables, holding at
most ``limit`` events (fewer where a gap falls in it); ``next_after`` is the window's end. A
filtered page reads the matching entries up to the head; when it holds fewer events than asked
for it has read everything up to the head, and says so in ``next_after`` (the head), so a
filtered consumer does not read the same range again.

Positions are the event store's notification ids: a rebuild of the read models, a restart or a
migration never changes them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, func, select

from ledger.application import TrialLedger
from ledger.domain.events import LedgerEvent
from ledger.encoding import plain
from ledger.eventlog import decoder, event_rows_at, event_rows_between
from ledger.persistence import EntryRow

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

#: the keys of each event in the feed, in order (contract.md)
FIELDS = ("position", "entry_id", "type", "patient_id", "stratum", "occurred_on", "recorded_at", "recorded_by", "role", "reason", "source", "data")


@dataclass(frozen=True)
class FeedPage:
    """Events after a position, and the position to ask for next."""

    events: list[dict[str, Any]]
    next_after: int
    head: int  # the last position committed when the page was read

    def document(self) -> dict[str, Any]:
        return {"events": self.events, "next_after": self.next_after}


@cache
def event_types() -> frozenset[str]:
    """The names of every event the ledger records (what ``type=`` may ask for)."""
    import ledger.domain.access  # noqa: F401  the aggregates' modules define their events
    import ledger.domain.escalation  # noqa: F401
    import ledger.domain.patient  # noqa: F401

    names: set[str] = set()
    pending: list[type[LedgerEvent]] = [LedgerEvent]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            names.add(sub.__name__)
            pending.append(sub)
    return frozenset(names)


class Feed:
    """Pages of the ledger's events, for the HTTP feed, the live stream and the relay."""

    def __init__(self, ledger: TrialLedger) -> None:
        self.ledger = ledger

    def head(self) -> int:
        """The last committed position (0 for an empty ledger)."""
        with self.ledger.engine.connect() as connection:
            return _head(connection)

    def page(self, after: int = 0, limit: int = DEFAULT_LIMIT, types: Collection[str] = (), patient_id: str | None = None) -> FeedPage:
        """The events after position ``after``, oldest first, at most ``limit`` of them."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1 to {MAX_LIMIT}")
        unknown = sorted(set(types) - event_types())
        if unknown:
            raise ValueError(f"unknown event type {unknown[0]!r}")
        with self.ledger.engine.connect() as connection:
            head = _head(connection)  # first: everything up to it has committed (see the module's notes)
            if head <= after:
                return FeedPage([], after, head)
            filtered = bool(types) or patient_id is not None
            # unfiltered: the window of positions after ``after``, a range of the primary key whatever the planner knows
            last = head if filtered else min(head, after + limit)
            entries = self._entries(connection, after, last, limit, types, patient_id)
            if not entries:
                return FeedPage([], last, head)
            store = self.ledger.store
            if filtered:
                rows = event_rows_at(connection, store, [e[0] for e in entries])
            else:
                rows = event_rows_between(connection, store, entries[0][0], entries[-1][0])
            decode = decoder(connection, store)
            owners = {position: (patient_id_, stratum) for position, patient_id_, stratum in entries}
            events = [_document(*decode(row), *owners.get(row[0], (None, None))) for row in rows]
        # a full filtered page ends at its last event; otherwise everything up to ``last`` has been read
        next_after = int(entries[-1][0]) if filtered and len(entries) == limit else last
        return FeedPage(events, next_after, head)

    def events(self, after: int = 0, limit: int = MAX_LIMIT) -> Iterator[dict[str, Any]]:
        """Every event committed after ``after`` (until the head as it moves), page by page."""
        while True:
            page = self.page(after, limit)
            yield from page.events
            if page.next_after == after:
                return
            after = page.next_after

    @staticmethod
    def _entries(connection: Connection, after: int, head: int, limit: int, types: Collection[str], patient_id: str | None) -> list[Any]:
        e = EntryRow.__table__.c
        query = select(e.position, e.patient_id, e.stratum).where(e.position > after, e.position <= head)
        if types:
            query = query.where(e.kind.in_(sorted(types)))
        if patient_id is not None:
            query = query.where(e.patient_id == patient_id)
        return list(connection.execute(query.order_by(e.position).limit(limit)).tuples())


def _head(connection: Connection) -> int:
    return int(connection.execute(select(func.max(EntryRow.position))).scalar() or 0)


def _document(position: int, event: LedgerEvent, patient_id: str | None, stratum: str | None) -> dict[str, Any]:
    return {
        "position": position,
        "entry_id": event.entry_id,
        "type": type(event).__name__,
        "patient_id": patient_id,
        "stratum": stratum,
        "occurred_on": event.occurred_on.isoformat(),
        "recorded_at": event.timestamp.isoformat(),
        "recorded_by": event.recorded_by,
        "role": event.role.value,
        "reason": event.reason,
        "source": event.source,
        "data": plain(event.data()),
    }
