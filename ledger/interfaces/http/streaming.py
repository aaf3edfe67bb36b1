"""Long polling and the live stream: both read the log by position, so a slow or returning client misses nothing.

Neither keeps events in memory for a client. The live stream reads the next page after the
last position it sent, writes it, and waits for the head watcher only once it has caught up.
A client that reads slowly holds the server's writes back (the socket's buffers fill and the
stream pauses): it then simply receives older events later, as a catch-up would, and nothing
is dropped. A client that disconnects resumes with ``Last-Event-ID``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence

from eventsourcing.persistence import PersistenceError
from sqlalchemy.exc import SQLAlchemyError

from ledger.interfaces.http.context import ServerContext
from ledger.streams.feed import FeedPage

STREAM_PAGE = 500
RECONNECT_MS = 2000


def long_poll(context: ServerContext, after: int, limit: int, types: Sequence[str], patient_id: str | None, wait: float) -> FeedPage:
    """A page of the feed; an empty one waits up to ``wait`` seconds for a first event."""
    feed = context.feed
    page = feed.page(after, limit, types, patient_id)
    deadline = time.monotonic() + wait
    while not page.events:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        context.watcher.wait_beyond(page.next_after, remaining)
        page = feed.page(page.next_after, limit, types, patient_id)
    return page


def event_stream(context: ServerContext, after: int, types: Sequence[str], patient_id: str | None, heartbeat: float) -> Iterator[str]:
    """Server-Sent Events from position ``after``: ``id`` is the position, ``event`` the type, ``data`` the feed's event."""
    feed = context.feed
    yield f"retry: {RECONNECT_MS}\n\n"
    while True:
        try:
            page = feed.page(after, STREAM_PAGE, types, patient_id)
        except (SQLAlchemyError, PersistenceError):  # the database is away: say so, and try again after a heartbeat
            yield ": database unavailable; retrying\n\n"
            time.sleep(heartbeat)
            continue
        for event in page.events:
            yield f"id: {event['position']}\nevent: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False, separators=(',', ':'))}\n\n"
        after = page.next_after
        if page.events:
            continue
        if context.watcher.wait_beyond(after, heartbeat) <= after:
            # a heartbeat carries the position read up to, so a filtered stream resumes past what it skipped
            yield f"id: {after}\nevent: heartbeat\ndata: {json.dumps({'next_after': after})}\n\n"
