"""A downstream system's subscription to the ledger's feed over HTTP (docs/streams.md).

    from ledger.client import FileCheckpoint, Subscription

    subscription = Subscription("http://ledger.example:8080", token, FileCheckpoint("safety-db.position"))
    for event in subscription:
        safety_db.apply(event)  # idempotent by event["entry_id"]

Delivery is at least once: the checkpoint (the position of the last event handled) is saved
durably only after the handler has come back for the next event, so a consumer that crashes
mid-way receives again the events it had not confirmed, never fewer. An event may therefore
arrive twice after a crash; ``entry_id`` identifies it. The feed is long-polled: a new
event arrives within the server's poll interval of its commit. A server that is down or
restarting is waited for, with growing pauses; a refusal (wrong token, role) stops the
subscription with ``SubscriptionError``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

Event = dict[str, Any]

#: seconds each long poll waits on the server for a first event
DEFAULT_WAIT = 20.0
MAX_PAUSE = 10.0


class SubscriptionError(Exception):
    """The server refused the subscription (sign-in, role, a bad parameter): retrying will not help."""


class CheckpointStore(Protocol):
    def load(self) -> int:
        """The position of the last event handled (0: none yet)."""

    def save(self, position: int) -> None:
        """Remember ``position`` durably before returning."""


class FileCheckpoint:
    """The position in a small text file, replaced atomically and flushed to disk on each save."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> int:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        if not text.isdigit():
            raise SubscriptionError(f"checkpoint file {self.path} does not hold a position: {text[:40]!r}")
        return int(text)

    def save(self, position: int) -> None:
        partial = self.path.with_name(f".{self.path.name}.partial")
        with partial.open("w", encoding="ascii") as out:
            out.write(f"{position}\n")
            out.flush()
            os.fsync(out.fileno())
        partial.replace(self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power cut
        finally:
            os.close(directory)


class MemoryCheckpoint:
    """A checkpoint kept in memory: for tests, or a consumer that stores its position itself."""

    def __init__(self, position: int = 0) -> None:
        self.position = position

    def load(self) -> int:
        return self.position

    def save(self, position: int) -> None:
        self.position = position


class Subscription:
    """The ledger's events from the checkpoint on, in commit order, waiting for new ones."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        checkpoint: CheckpointStore | None = None,
        types: Sequence[str] = (),
        patient_id: str | None = None,
        limit: int = 500,
        wait: float = DEFAULT_WAIT,
        save_every: int = 1,
        until_idle: bool = False,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.checkpoint = checkpoint if checkpoint is not None else MemoryCheckpoint()
        self.types = list(types)
        self.patient_id = patient_id
        self.limit = limit
        self.wait = wait
        self.save_every = max(1, save_every)
        self.until_idle = until_idle  # end once a poll finds nothing new (scripts, tests)
        self.on_retry = on_retry or (lambda message: print(f"subscription: {message}", file=sys.stderr, flush=True))
        self._stopped = False

    def stop(self) -> None:
        """End the iteration once the current poll returns."""
        self._stopped = True

    def __iter__(self) -> Iterator[Event]:
        position = saved = self.checkpoint.load()
        while not self._stopped:
            page = self.fetch(position)
            if self.until_idle and not page["events"] and int(page["next_after"]) == position:  # nothing new (an empty page past a gap is not idle)
                self._stopped = True
            for handled, event in enumerate(page["events"], start=1):
                yield event
                position = int(event["position"])  # the handler came back: handled
                if handled % self.save_every == 0:
                    self.checkpoint.save(position)
                    saved = position
            position = max(position, int(page["next_after"]))  # a filtered page read through events it skipped
            if position != saved:
                self.checkpoint.save(position)
                saved = position

    def run(self, handler: Callable[[Event], None], until: Callable[[], bool] = lambda: False) -> None:
        """Call ``handler`` for each event until ``until()`` is true (checked between events) or ``stop()``."""
        for event in self:
            handler(event)
            if until():
                self.stop()

    def fetch(self, after: int) -> dict[str, Any]:
        """One page of the feed after ``after``, waiting out an unreachable or restarting server."""
        query: list[tuple[str, str]] = [("after", str(after)), ("limit", str(self.limit)), ("wait", f"{self.wait:g}")]
        query += [("type", t) for t in self.types]
        if self.patient_id is not None:
            query.append(("patient", self.patient_id))
        request = urllib.request.Request(f"{self.url}/events?{urllib.parse.urlencode(query)}", headers={"Accept": "application/json"})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        pause = 0.2
        while True:
            try:
                with urllib.request.urlopen(request, timeout=self.wait + 30) as response:
                    return dict(json.load(response))
            except urllib.error.HTTPError as error:
                if error.code < 500:
                    raise SubscriptionError(f"{error.code}: {_message(error)}") from None
                why = f"server answered {error.code}: {_message(error)}"
            except (urllib.error.URLError, OSError, ValueError) as error:
                why = f"cannot read the feed at {self.url}: {getattr(error, 'reason', error)}"
            if self._stopped:
                return {"events": [], "next_after": after}
            self.on_retry(f"{why}; retrying in {pause:.1f} s")
            time.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)


def _message(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read()).get("message", error.reason))
    except (ValueError, OSError):
        return str(error.reason)
