"""Every event of the ledger to a NATS JetStream stream, exactly once and in order (docs/streams.md).

The relay's tracking position is the stream itself: the ``Ledger-Position`` header of the
stream's last message. On start, and after anything goes wrong, the relay reads it back and
publishes the feed's events after it, so what it has published and where it stands can never
disagree. Each message carries ``Nats-Expected-Last-Sequence``: the stream sequence the relay
knows its predecessor has. JetStream stores a message only right behind that predecessor, so
nothing is ever stored after a gap or out of order, and a page sent without waiting for each
acknowledgement stops at its first refusal. ``Nats-Msg-Id`` (the entry id) lets the stream's
duplicate window drop a repeat as well.

Errors, as one small hierarchy::

    RelayError
    ├── BrokerUnavailable   NATS cannot be reached, or has no JetStream   (retried while following)
    └── StreamUnusable      the stream is not this relay's to extend: other subjects, a message
                            the relay did not publish, another ledger's events, or it refuses messages
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import string
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from ledger.errors import LedgerError
from ledger.streams.feed import Feed

HEADER_POSITION = "Ledger-Position"
HEADER_TYPE = "Ledger-Type"
HEADER_MSG_ID = "Nats-Msg-Id"
HEADER_EXPECTED_SEQUENCE = "Nats-Expected-Last-Sequence"

DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "LEDGER"
DEFAULT_PREFIX = "ledger"
DEFAULT_INTERVAL = 0.2
DEFAULT_PAGE_SIZE = 500  # of the feed's MAX_LIMIT
DEFAULT_DUPLICATE_WINDOW = 120.0

#: the subject token of an event that concerns no patient (escalation, users, access records)
NO_PATIENT = "-"
#: the characters a patient token keeps as they are; any other is written %XX (a "." as %2E)
_KEPT = frozenset(string.ascii_letters + string.digits + "_:-")

ACK_WAIT = 10.0  # seconds for a page's acknowledgements before the relay reads the stream again
RETRY_FIRST, RETRY_MOST = 0.5, 15.0  # seconds between attempts to reach NATS again while following
REPORT_EVERY, REPORT_SECONDS = 5000, 10.0  # a status line per this many events, or this often
STALLS_MOST = 5  # refusals in a row without progress before the relay gives up on the stream
WRONG_LAST_SEQUENCE = 10071  # JetStream's error code: the stream does not end where a message expects


class RelayError(LedgerError):
    """Base of the relay's errors."""


class BrokerUnavailable(RelayError):
    """NATS cannot be reached, or does not answer JetStream requests."""


class StreamUnusable(RelayError):
    """The stream cannot be extended by this relay; the message says why and what to do."""


def patient_token(patient_id: str | None) -> str:
    """The patient's subject token: ``-`` for no patient; otherwise the id, ``.`` (or any unsafe character) as ``%XX``."""
    if not patient_id:
        return NO_PATIENT
    return "".join(c if c in _KEPT else "".join(f"%{b:02X}" for b in c.encode()) for c in patient_id)


def subject_of(prefix: str, event: Mapping[str, Any]) -> str:
    """``<prefix>.<EventType>.<patient token>``."""
    return f"{prefix}.{event['type']}.{patient_token(event['patient_id'])}"


@dataclass(frozen=True)
class Message:
    """One event as it goes to the stream (the expected sequence is added when it is sent)."""

    position: int
    entry_id: str
    subject: str
    payload: bytes
    headers: dict[str, str]

    @classmethod
    def of(cls, prefix: str, event: Mapping[str, Any]) -> Message:
        return cls(
            position=int(event["position"]),
            entry_id=str(event["entry_id"]),
            subject=subject_of(prefix, event),
            payload=json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode(),
            headers={HEADER_MSG_ID: str(event["entry_id"]), HEADER_POSITION: str(event["position"]), HEADER_TYPE: str(event["type"])},
        )


@dataclass(frozen=True)
class Mark:
    """Where the stream ends: its last sequence, and the ledger position and entry of that message."""

    sequence: int = 0
    position: int = 0
    entry_id: str | None = None


@dataclass(frozen=True)
class Ack:
    """JetStream stored a message (or, ``duplicate``, had it already) at ``sequence``."""

    sequence: int
    duplicate: bool


@dataclass(frozen=True)
class Refusal:
    """JetStream did not store a message."""

    code: int
    description: str


Outcome = Ack | Refusal | None  # None: no answer in time


@dataclass(frozen=True)
class RelaySettings:
    """Where the relay publishes, and how (``ledger relay nats``'s options)."""

    url: str = DEFAULT_URL  # one server, or several separated by commas
    stream: str = DEFAULT_STREAM
    prefix: str = DEFAULT_PREFIX
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW  # seconds; only used when the relay creates the stream
    interval: float = DEFAULT_INTERVAL
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def subjects(self) -> list[str]:
        return [f"{self.prefix}.>"]


@dataclass
class RelayReport:
    """What a run published, and where the stream ends."""

    stream: str
    published: int = 0
    position: int = 0
    sequence: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"stream": self.stream, "published": self.published, "position": self.position, "sequence": self.sequence}


class Broker(Protocol):
    """The relay's stream on a connection to the broker (``ledger.streams.jetstream``)."""

    async def ensure_stream(self) -> None:
        """Create the stream when it is missing; ``StreamUnusable`` when it takes other subjects."""

    async def last_mark(self) -> Mark:
        """Where the stream ends now, read from its last message."""

    async def publish(self, messages: Sequence[Message], after: int) -> list[Outcome]:
        """Send every message, the i-th expecting the stream to end at sequence ``after + i``; the outcomes, in order."""

    async def close(self) -> None: ...


#: opens a connection to the broker (``ledger.streams.jetstream.connect``); ``BrokerUnavailable`` when it cannot
Connect = Callable[[RelaySettings], Awaitable[Broker]]


class JetStreamRelay:
    """Publishes the feed's events to the stream, from where the stream ends, until stopped."""

    def __init__(self, feed: Feed, settings: RelaySettings, connect: Connect, notify: Callable[[str], None] = lambda line: None) -> None:
        self.feed = feed
        self.settings = settings
        self.connect = connect
        self.notify = notify
        self.mark = Mark()
        self.report = RelayReport(settings.stream)
        self._unreported = 0
        self._reported_at = time.monotonic()

    async def run(self, stop: asyncio.Event, once: bool = False) -> RelayReport:
        """Publish until ``stop`` is set, or, ``once``, until the stream holds every event committed now.

        NATS unreachable at the start stops the run (``BrokerUnavailable``), and so does a
        connection lost during a ``once`` run; while following, the relay keeps trying to reach
        NATS again and resumes from where the stream ends. A ``StreamUnusable`` always stops it.
        """
        broker: Broker | None = await self._open()
        until = self.feed.head() if once else None  # a run once ends at what is committed when it starts
        stalls, behind = 0, False
        try:
            while broker is not None and not stop.is_set():
                published_before = self.report.published
                try:
                    if behind:
                        await self._resume(broker)
                        behind = False
                    published = await self._publish_page(broker)
                except _OutOfStep as step:
                    stalls = stalls + 1 if self.report.published == published_before else 1
                    if stalls >= STALLS_MOST:
                        raise StreamUnusable(
                            f"stream {self.settings.stream} keeps refusing the relay's messages ({step}): is anything else publishing to it?"
                        ) from None
                    behind = True
                    continue
                except BrokerUnavailable as error:
                    await broker.close()
                    if once:
                        raise
                    broker = await self._reopen(stop, error)
                    continue
                if published and (until is None or self.mark.position < until):
                    stalls = 0
                    continue  # there may be more
                self._report_progress()
                if once:
                    break
                await _pause(stop, self.settings.interval)
        finally:
            if broker is not None:
                await broker.close()
        return self.report

    async def _open(self) -> Broker:
        broker = await self.connect(self.settings)
        try:
            await broker.ensure_stream()
            await self._resume(broker)
        except BaseException:
            await broker.close()
            raise
        s = self.settings
        self.notify(f"relaying to stream {s.stream} ({s.subjects[0]}) on {shown(s.url)} after position {self.mark.position} (sequence {self.mark.sequence})")
        return broker

    async def _reopen(self, stop: asyncio.Event, error: BrokerUnavailable) -> Broker | None:
        delay = RETRY_FIRST
        while True:
            self.notify(f"{error}; trying again in {delay:g} s")
            await _pause(stop, delay)
            if stop.is_set():
                return None
            try:
                return await self._open()
            except BrokerUnavailable as again:
                error, delay = again, min(delay * 2, RETRY_MOST)

    async def _resume(self, broker: Broker) -> None:
        """Take the stream's end as the relay's position, once the ledger is known to have that event there."""
        mark = await broker.last_mark()
        if mark.position:
            found = self.feed.page(mark.position - 1, 1).events
            if not found or found[0]["position"] != mark.position or found[0]["entry_id"] != mark.entry_id:
                raise StreamUnusable(
                    f"the last message of stream {self.settings.stream} is entry {mark.entry_id} at position {mark.position}, which this "
                    "ledger does not have there: the stream was filled from another ledger, or the database is an older copy; "
                    "relay this ledger to a new stream"
                )
        self.mark = mark
        self.report.position, self.report.sequence = mark.position, mark.sequence

    async def _publish_page(self, broker: Broker) -> int:
        after = self.mark.position
        while True:  # a short read: the loop may wait on it
            page = self.feed.page(after, self.settings.page_size)
            if page.events or page.next_after == after:
                break
            after = page.next_after  # a window of positions no transaction committed (a gap): read on
        events = page.events
        if not events:
            return 0
        messages = [Message.of(self.settings.prefix, event) for event in events]
        outcomes = await broker.publish(messages, self.mark.sequence)
        stored = 0
        for message, outcome in zip(messages, outcomes, strict=True):
            if not (isinstance(outcome, Ack) and not outcome.duplicate and outcome.sequence == self.mark.sequence + 1):
                break
            self.mark = Mark(outcome.sequence, message.position, message.entry_id)
            stored += 1
        self._count(stored)
        if stored == len(messages):
            return stored
        failed = outcomes[stored]
        if failed is None:
            raise BrokerUnavailable(f"NATS at {shown(self.settings.url)} did not acknowledge a message within {ACK_WAIT:g} s")
        if isinstance(failed, Refusal) and failed.code != WRONG_LAST_SEQUENCE:
            raise StreamUnusable(f"stream {self.settings.stream} refuses the event at position {messages[stored].position}: {failed.description}")
        raise _OutOfStep(f"expected to extend sequence {self.mark.sequence}, answered {failed}")

    def _count(self, stored: int) -> None:
        self.report.published += stored
        self.report.position, self.report.sequence = self.mark.position, self.mark.sequence
        self._unreported += stored
        self._report_progress()

    def _report_progress(self) -> None:
        if self._unreported and (self._unreported >= REPORT_EVERY or time.monotonic() - self._reported_at >= REPORT_SECONDS):
            self.notify(f"{self.report.published} events published, up to position {self.mark.position} (sequence {self.mark.sequence})")
            self._unreported, self._reported_at = 0, time.monotonic()


class _OutOfStep(Exception):
    """The stream did not end where the relay expected: read its end again."""


def shown(url: str) -> str:
    """The server URL(s) without user, password or token."""
    shown_urls = []
    for one in url.split(","):
        parts = urlsplit(one.strip())
        if "@" in parts.netloc:
            parts = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2])
        shown_urls.append(urlunsplit(parts))
    return ",".join(shown_urls)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):  # the time is up, not stopped
        await asyncio.wait_for(stop.wait(), seconds)
