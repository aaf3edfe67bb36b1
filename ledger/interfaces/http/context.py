"""What every request of one server shares: ledgers for its threads, the signed-in users, the head watcher.

A ``TrialLedger`` caches aggregates and chain tips for its writes, so it serves one request at
a time: requests check one out of a pool (one per server thread at most) and give it back.
The feed and the live stream read the log through one shared engine, which is thread-safe.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from queue import Empty, LifoQueue

from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.domain.values import Actor
from ledger.identity.directory import Directory
from ledger.streams.feed import Feed
from ledger.streams.watch import HeadWatcher

#: how long a request's write waits for a database that cannot be reached before answering 503
REQUEST_OUTAGE_SECONDS = 10.0
#: how long a verified token is trusted without checking it again (argon2 costs tens of milliseconds)
TOKEN_TTL_SECONDS = 5.0


@dataclass
class ServerContext:
    settings: Settings
    reader: TrialLedger  # for the feed and the stream: only its engine and decoder are used
    watcher: HeadWatcher
    _idle: LifoQueue[TrialLedger] = field(default_factory=LifoQueue)
    _all: list[TrialLedger] = field(default_factory=list)
    _tokens: dict[str, tuple[Actor, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, settings: Settings, poll_interval: float | None = None) -> ServerContext:
        reader = build_ledger(settings, create=False)
        feed = Feed(reader)
        watcher = HeadWatcher(feed.head) if poll_interval is None else HeadWatcher(feed.head, poll_interval)
        context = cls(settings, reader, watcher)
        context._all.append(reader)
        return context

    @property
    def feed(self) -> Feed:
        return Feed(self.reader)

    @contextmanager
    def ledger(self) -> Iterator[TrialLedger]:
        """A ledger for this request alone."""
        try:
            ledger = self._idle.get_nowait()
        except Empty:
            ledger = build_ledger(self.settings, create=False)
            ledger.outage_seconds = REQUEST_OUTAGE_SECONDS
            with self._lock:
                self._all.append(ledger)
        try:
            yield ledger
        finally:
            self._idle.put(ledger)

    def authenticate(self, ledger: TrialLedger, token: str) -> Actor:
        """The user a bearer token signs in (``NotAuthenticated`` otherwise), trusted for a few seconds once verified."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            known = self._tokens.get(key)
        if known is not None and known[1] > now:
            return known[0]
        actor = Directory(ledger).authenticate(token)
        with self._lock:
            self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
            self._tokens[key] = (actor, now + TOKEN_TTL_SECONDS)
        return actor

    def close(self) -> None:
        self.watcher.close()
        with self._lock:
            for ledger in self._all:
                ledger.close()
            self._all.clear()
