"""Wake waiting readers as soon as a new event commits: one poller for every waiting request.

Long-polling feed requests and live streams wait here instead of each asking the database.
While anyone waits, one thread reads the head (the last committed position) every
``interval`` seconds and wakes them when it moves. A writer in the same process may also
``bump`` the head after its commit, so its own events are sent without waiting for a poll.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_INTERVAL = 0.05


class HeadWatcher:
    def __init__(self, read_head: Callable[[], int], interval: float = DEFAULT_INTERVAL) -> None:
        self._read_head = read_head
        self._interval = interval
        self._changed = threading.Condition()
        self._head = 0
        self._waiting = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self.failures = 0  # reads of the head that failed (the database unreachable), for the health check

    def wait_beyond(self, position: int, timeout: float) -> int:
        """Block until the head is past ``position`` or ``timeout`` seconds pass; the head then known."""
        deadline = time.monotonic() + timeout
        with self._changed:
            self._waiting += 1
            try:
                self._ensure_polling()
                self._changed.notify_all()  # a poller asleep for want of waiters starts at once
                while self._head <= position and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._changed.wait(remaining)
                return self._head
            finally:
                self._waiting -= 1

    def bump(self, head: int) -> None:
        """A writer of this process committed up to ``head``."""
        with self._changed:
            if head > self._head:
                self._head = head
                self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _ensure_polling(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="ledger-head-watcher", daemon=True)
            self._thread.start()

    def _poll(self) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
            try:
                self.bump(self._read_head())
                self.failures = 0
            except Exception:  # the database is away: waiters time out and answer with what they have; polling goes on
                self.failures += 1
            time.sleep(self._interval)
