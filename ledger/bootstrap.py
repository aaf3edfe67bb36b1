"""The one place that wires settings, the event store, the protocol and the clock together.

Settings (environment variables, read here only):

- ``LEDGER_DATABASE_URL``: SQLAlchemy URL of the store; default ``sqlite:///ledger.sqlite``
  in the working directory; ``postgresql+psycopg://user@host/db`` selects PostgreSQL.
- ``LEDGER_PROTOCOL_VERSION``: the protocol definition in force (default: newest shipped).
- ``LEDGER_USER`` / ``LEDGER_ROLE``: the acting user until authentication arrives
  (default: the OS user, acting as ``investigator``).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from ledger import outages
from ledger.application import TrialLedger
from ledger.clock import Clock, SystemClock
from ledger.database import current_revision, head_revision, is_new, upgrade
from ledger.domain.values import Actor, Role
from ledger.errors import DatabaseBehind, InvalidCommand, StoreUnavailable
from ledger.handlers import ChangesParser
from ledger.persistence import EventStore, tune_sqlite
from ledger.protocol import load_protocol

DEFAULT_DATABASE_URL = "sqlite:///ledger.sqlite"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    protocol_version: str | None = None
    user: str = "unknown"
    role: Role = Role.INVESTIGATOR
    aggregate_cache_size: int = 1000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        role_name = env.get("LEDGER_ROLE", Role.INVESTIGATOR.value)
        try:
            role = Role(role_name)
        except ValueError:
            raise InvalidCommand({"LEDGER_ROLE": f"unknown role {role_name!r}; one of {', '.join(r.value for r in Role)}"}) from None
        user = env.get("LEDGER_USER") or _os_user()
        if len(user) > 128 or not user.isprintable():
            raise InvalidCommand({"LEDGER_USER": "must be a user id of at most 128 printable characters"})
        return cls(
            database_url=env.get("LEDGER_DATABASE_URL") or DEFAULT_DATABASE_URL,
            protocol_version=env.get("LEDGER_PROTOCOL_VERSION") or None,
            user=user,
            role=role,
        )

    @property
    def actor(self) -> Actor:
        return Actor(self.user, self.role)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def build_store(settings: Settings, create: bool = True) -> EventStore:
    """Open the event store; without ``create``, a SQLite file that does not exist is an error."""
    path = sqlite_path(settings.database_url)
    if not create and path is not None and not path.exists():
        raise StoreUnavailable(f"there is no ledger database at {path}; record something first, or point LEDGER_DATABASE_URL at the ledger")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
        "SQLALCHEMY_URL": settings.database_url,
        "CREATE_TABLE": "y",
        "AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size),
    }
    try:
        store = EventStore(env=env)
    except Exception as error:  # the driver's own errors vary: say what to check
        raise StoreUnavailable(f"cannot open the ledger database {_redact(settings.database_url)}: {outages.explain(error)}") from error
    engine = store.recorder.datastore.engine  # type: ignore[attr-defined]
    tune_sqlite(engine)
    if engine.dialect.name != "sqlite":
        # test each pooled connection as it is taken: after a server restart the first use meets a new connection, not an error
        engine.pool._pre_ping = True
    return store


def build_ledger(
    settings: Settings | None = None,
    clock: Clock | None = None,
    parse_changes: ChangesParser | None = None,
    migrate: bool = False,
    create: bool = True,
) -> TrialLedger:
    """A ready ledger: store opened, protocol loaded, the database's tables at the newest revision.

    A new database gets its tables; one made by an older version of the ledger is refused
    (``DatabaseBehind``) unless ``migrate`` — ``ledger migrate`` — upgrades it.
    """
    settings = settings or Settings.from_env()
    protocol = load_protocol(settings.protocol_version)
    store = build_store(settings, create=create)
    engine = store.recorder.datastore.engine  # type: ignore[attr-defined]
    current, head = current_revision(engine), head_revision()
    if current != head:
        if not (migrate or is_new(engine)):
            store.close()
            engine.dispose()
            raise DatabaseBehind(
                f"the database {_redact(settings.database_url)} is at revision {current or 'none'} and this ledger needs "
                f"{head}: back it up, then run `ledger migrate`"
            )
        upgrade(engine)
    if parse_changes is None:
        from ledger.interfaces.schemas import parse_changes as schema_parser

        parse_changes = schema_parser
    return TrialLedger(store, protocol, clock or SystemClock(), parse_changes)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite"):
        return None
    name = make_url(url).database
    return Path(name) if name and name != ":memory:" else None


def _redact(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return url
