"""One foreground scheduler per database (rule SCHEDULER-RUNNING).

Two foreground schedulers would share one APScheduler job store, each removing jobs the other
has loaded. The first to start holds a lock that the operating system or the database server
releases when its process ends, however it ends: on PostgreSQL a session advisory lock on a
connection of its own, on SQLite an exclusive ``flock`` on a file beside the database.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from ledger.application import TrialLedger
from ledger.errors import CommandRefused

RULE = "SCHEDULER-RUNNING"
ADVISORY_KEY = 0x4C45444745 + 1  # "LEDGE" + 1: the scheduler's lock among the ledger's advisory locks


class SingleScheduler:
    def __init__(self, ledger: TrialLedger) -> None:
        self.ledger = ledger
        self._held: Any = None

    def acquire(self) -> None:
        engine = self.ledger.engine
        if engine.dialect.name == "postgresql":
            # a connection of its own, outside the ledger's pool (which APScheduler disposes of when it shuts down)
            connection = create_engine(engine.url, poolclass=NullPool).connect()
            if not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}).scalar():
                _close(connection)
                raise self._refusal()
            connection.commit()
            self._held = connection
            return
        name = make_url(str(engine.url)).database
        if not name or name == ":memory:":
            return
        handle: IO[str] = Path(f"{name}.scheduler.lock").open("a")  # noqa: SIM115 - held open until release()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise self._refusal() from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._held = handle

    def release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        if isinstance(held, Connection):
            held.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})
            _close(held)
        else:
            fcntl.flock(held.fileno(), fcntl.LOCK_UN)
            held.close()

    def _refusal(self) -> CommandRefused:
        return CommandRefused(RULE, "another scheduler runs in the foreground on this database; stop it first (`scheduler run --once` may run beside it)")


def _close(connection: Connection) -> None:
    connection.close()
    connection.engine.dispose()
