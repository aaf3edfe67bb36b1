"""What a database failure means for the user: which failures pass, and how to say what happened.

A driver error is classified by walking its causes:

- ``UNREACHABLE``: the server went away or cannot be reached (a restart, a network blip, a
  connection the server terminated). It passes: the ledger's writers wait and try again
  (``TrialLedger.outage_seconds``), and the connection pool is renewed.
- ``DISK_FULL``: no space left for the database (SQLite's "database or disk is full",
  PostgreSQL's "No space left on device").
- ``READ_ONLY``: the database cannot be written (a read-only file or mount, a standby server).

The last two do not pass by waiting: the command fails at once, naming the cause. In every
case the failing transaction rolls back whole, so nothing committed before is touched and
nothing half-written is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum

from sqlalchemy.exc import DBAPIError


class Failure(Enum):
    UNREACHABLE = "unreachable"
    DISK_FULL = "disk full"
    READ_ONLY = "read-only"


_SIGNS: dict[Failure, tuple[str, ...]] = {
    Failure.DISK_FULL: ("database or disk is full", "no space left on device", "could not extend file", "disk full"),
    Failure.READ_ONLY: (
        "readonly database", "read-only database", "read-only file system", "read-only transaction", "attempt to write a readonly",
        "recovery is in progress",
    ),
    Failure.UNREACHABLE: (
        "connection refused", "server closed the connection", "terminating connection", "connection to server", "could not connect",
        "the database system is shutting down", "the database system is starting up", "the database system is in recovery mode",
        "does not allow connections", "connection is closed", "connection has been closed", "connection already closed", "ssl syscall",
        "broken pipe", "connection reset", "not currently accepting connections", "consuming input failed", "server is not accepting",
        "cannot connect", "connection timed out", "no connection to the server",
    ),
}

_ADVICE = {
    Failure.UNREACHABLE: "the database server cannot be reached: check that it is running and LEDGER_DATABASE_URL",
    Failure.DISK_FULL: "the disk holding the database is full: free space, then run the command again",
    Failure.READ_ONLY: "the database cannot be written (a read-only file, mount or standby server): check its permissions and LEDGER_DATABASE_URL",
}


def failure_of(error: BaseException) -> Failure | None:
    """The kind of database failure behind ``error``, or ``None`` when it is none of these."""
    for cause in _causes(error):
        text = str(cause).lower()
        for failure in (Failure.DISK_FULL, Failure.READ_ONLY, Failure.UNREACHABLE):
            if any(sign in text for sign in _SIGNS[failure]):
                return failure
        if isinstance(cause, DBAPIError) and cause.connection_invalidated:
            return Failure.UNREACHABLE
    return None


def explain(error: BaseException) -> str:
    """One sentence for the user: the cause when known, and that nothing of the failed command was recorded."""
    failure = failure_of(error)
    detail = _first_line(error)
    if failure is None:
        return f"{detail}\ncheck LEDGER_DATABASE_URL and that the database server is running"
    return f"{_ADVICE[failure]} ({detail}); nothing of the failed command was recorded, and nothing recorded before was touched"


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, DBAPIError) and isinstance(current.orig, BaseException):
            yield current.orig
        current = current.__cause__ or current.__context__


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
