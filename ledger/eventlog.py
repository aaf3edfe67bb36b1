"""Reading the stored log by position: the rows of ``ledger_events``, decoded, through the driver's cursor.

Shared by the projector (ranges of positions) and the feed for downstream systems (a range,
or the positions a filter on ``ledger_entries`` chose). No ORM objects, no type processing:
these reads run once per event a rebuild or a subscriber sees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from sqlalchemy import Connection

from ledger.domain.events import LedgerEvent
from ledger.persistence import EventStore

_COLUMNS = "id, originator_id, originator_version, topic, state"


def fetch(connection: Connection, sql: str, params: Sequence[Any]) -> Sequence[Any]:
    """The rows of a select whose parameters are marked ``{}``, through the driver's own cursor."""
    mark = "?" if connection.dialect.name == "sqlite" else "%s"
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql.format(*(mark for _ in params)), tuple(params))
        return cursor.fetchall()
    finally:
        cursor.close()


def event_rows_between(connection: Connection, store: EventStore, first: int, last: int | None = None, limit: int | None = None) -> Sequence[Any]:
    """``(position, originator_id, version, topic, state)`` of the events from ``first`` (to ``last``), in order."""
    bounds = "id >= {}" if last is None else "id BETWEEN {} AND {}"
    params = (first,) if last is None else (first, last)
    limited = "" if limit is None else f" LIMIT {int(limit)}"
    return fetch(connection, f"SELECT {_COLUMNS} FROM {_events_table(store)} WHERE {bounds} ORDER BY id{limited}", params)


def event_rows_at(connection: Connection, store: EventStore, positions: Sequence[int]) -> Sequence[Any]:
    """The events at these positions, in order (at most a few thousand positions per call)."""
    if not positions:
        return []
    marks = ", ".join("{}" for _ in positions)
    return fetch(connection, f"SELECT {_COLUMNS} FROM {_events_table(store)} WHERE id IN ({marks}) ORDER BY id", positions)


def decoder(connection: Connection, store: EventStore) -> Callable[[Sequence[Any]], tuple[int, LedgerEvent]]:
    """A function from an event row to its position and the decoded event."""
    as_uuid = _uuid_of_bytes if connection.dialect.name == "sqlite" else _uuid_of
    to_event = store.mapper.to_domain_event

    def decode(row: Sequence[Any]) -> tuple[int, LedgerEvent]:
        position, originator_id, version, topic, state = row
        stored = StoredEvent(originator_id=as_uuid(originator_id), originator_version=version, topic=topic, state=bytes(state))
        return position, cast(LedgerEvent, to_event(stored))

    return decode


def _events_table(store: EventStore) -> str:
    return str(store.recorder.events_table_name)  # type: ignore[attr-defined]


@lru_cache(maxsize=4096)  # the events of a page mostly belong to a few aggregates
def _uuid_of_bytes(value: bytes) -> UUID:
    return UUID(bytes=bytes(value))


def _uuid_of(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
