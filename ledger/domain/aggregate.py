"""``EntryLog``: the base of both aggregates — an ordered log of immutable entries."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from ledger.domain.events import LedgerEvent
from ledger.domain.values import Entry


class EntryLog(Aggregate):
    """An aggregate that keeps every entry it was given, in recorded order.

    Entries are immutable, so a copy of the aggregate (the repository copies what it hands
    out of its cache) shares them and copies only the lists: a command on a patient with
    hundreds of entries costs no deep copy of their history.
    """

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def record(self, event_class: type[LedgerEvent], **fields: Any) -> None:
        """Append one fact of the given kind."""
        self.trigger_event(event_class, **fields)

    def entry(self, entry_id: str) -> Entry | None:
        return next((e for e in self.entries if e.entry_id == entry_id), None)

    def __deepcopy__(self, memo: dict[int, Any]) -> EntryLog:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.entries = list(self.entries)
        clone._pending_events = list(self._pending_events)
        return clone
