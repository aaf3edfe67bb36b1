"""The event store and the ledger's own tables beside it.

- ``EventStore``: the eventsourcing application whose recorder (eventsourcing-sqlalchemy)
  keeps the events in ``ledger_events``, with transcodings for dates and vocabularies.
- ``EntryRow`` (``ledger_entries``): one row per event, written in the event's transaction:
  its position in the log, entry id, aggregate, kind and the envelope's times and users.
  It answers "which entries, in which order, recorded when" without decoding events.
- ``CommandRow`` (``ledger_commands``): the ``command_id`` of every command that carried
  one, with a fingerprint of the command, so a re-sent command is acknowledged as a duplicate
  and records nothing, and an id reused for a different command is refused.

Both tables are created by the Alembic revisions in ``migrations/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import fields
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application, Repository
from eventsourcing.persistence import JSONTranscoder, Transcoding
from eventsourcing.utils import strtobool
from sqlalchemy import BigInteger, Date, DateTime, Integer, String, Text, TypeDecorator, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.domain.escalation import Escalation
from ledger.domain.patient import Patient
from ledger.domain.values import ENUMS, Entry

APPLICATION_NAME = "Ledger"  # the event store's tables are named ledger_events, ...
SNAPSHOT_INTERVAL = 100


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class EnumAsValue(Transcoding):
    """A vocabulary member stored as its value, tagged with its class name."""

    def __init__(self, enum: type[Enum]) -> None:
        self.type = enum
        self.name = f"enum_{enum.__name__}"
        self.members: dict[Any, Enum] = {member.value: member for member in enum}  # a lookup, not the Enum's call: every read decodes some

    def encode(self, obj: Enum) -> Any:
        return obj.value

    def decode(self, data: Any) -> Enum:
        member = self.members.get(data)
        return member if member is not None else self.type(data)  # an unknown value fails as the Enum's call does


class EntryAsDict(Transcoding):
    """An aggregate's entry inside a snapshot, as written before ``EntryAsRow`` (still read)."""

    type = Entry
    name = "entry"

    def encode(self, obj: Entry) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in fields(obj)}

    def decode(self, data: dict[str, Any]) -> Entry:
        return Entry(**data)


class EntryAsRow(Transcoding):
    """An aggregate's entry inside a snapshot, as a list in ``Entry``'s field order.

    The envelope's date and time are ISO text parsed here, so a snapshot of a long course
    decodes with a fraction of the JSON objects the dictionary form needs.
    """

    type = Entry
    name = "entry_row"

    def encode(self, obj: Entry) -> list[Any]:
        return [
            obj.entry_id, obj.kind, obj.version, obj.occurred_on.isoformat(), obj.recorded_at.isoformat(), obj.recorded_by,
            obj.role, obj.reason, obj.source, obj.protocol_version, obj.command_id, obj.data,
        ]

    def decode(self, data: list[Any]) -> Entry:
        entry_id, kind, version, occurred_on, recorded_at, recorded_by, role, reason, source, protocol_version, command_id, values = data
        return Entry(
            entry_id, kind, version, date.fromisoformat(occurred_on), datetime.fromisoformat(recorded_at), recorded_by,
            role, reason, source, protocol_version, command_id, values,
        )


_CACHE_CURRENT: ContextVar[bool] = ContextVar("ledger_cache_current", default=False)


@contextmanager
def cache_known_current() -> Iterator[None]:
    """Within this block cached aggregates are read as they are, without asking the store for newer events.

    Only for a writer that holds the store's write lock and has seen that no other writer
    committed an event since its own last commit: its cache then holds every event there is.
    """
    token = _CACHE_CURRENT.set(True)
    try:
        yield
    finally:
        _CACHE_CURRENT.reset(token)


class LedgerRepository(Repository[UUID]):
    """eventsourcing's repository, whose fast-forward of a cached aggregate can be known unnecessary."""

    @property
    def fastforward(self) -> bool:
        return self._fastforward and not _CACHE_CURRENT.get()

    @fastforward.setter
    def fastforward(self, value: bool) -> None:
        self._fastforward = value


class EventStore(Application[UUID]):
    """The event store: events in ``ledger_events``, snapshots in ``ledger_snapshots``.

    A snapshot every ``SNAPSHOT_INTERVAL`` events bounds what a new process replays to load
    a patient; within one process the aggregate cache avoids even that.
    """

    name = APPLICATION_NAME
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Patient: SNAPSHOT_INTERVAL, Escalation: SNAPSHOT_INTERVAL}

    def construct_repository(self) -> Repository[UUID]:
        cache_maxsize = self.env.get(self.AGGREGATE_CACHE_MAXSIZE)
        return LedgerRepository(
            event_store=self.events,
            snapshot_store=self.snapshots,
            cache_maxsize=int(cache_maxsize) if cache_maxsize else None,
            fastforward=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD, "y")),
            fastforward_skipping=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, "n")),
            deepcopy_from_cache=strtobool(self.env.get(self.DEEPCOPY_FROM_AGGREGATE_CACHE, "y")),
        )

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        transcoder.register(EntryAsDict())  # snapshots written before entry_row
        transcoder.register(EntryAsRow())  # registered last: new snapshots are written so
        for enum in ENUMS:
            transcoder.register(EnumAsValue(enum))


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, always given back timezone-aware in UTC.

    SQLite keeps no offset: values are stored as UTC there and read back as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a recorded time must carry its timezone")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            utc = self.process_bind_param(value, dialect)
            # the text SQLAlchemy's SQLite DATETIME stores ("2016-01-04 09:30:00.000000"), in one call
            return None if utc is None else utc.isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class EntryRow(Base):
    __tablename__ = "ledger_entries"

    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entry_id: Mapped[str] = mapped_column(String(64), unique=True)
    aggregate_id: Mapped[str] = mapped_column(String(36), index=True)
    aggregate_version: Mapped[int] = mapped_column(Integer)
    patient_id: Mapped[str | None] = mapped_column(String(64), index=True)
    stratum: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    occurred_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    recorded_by: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    command_id: Mapped[str | None] = mapped_column(String(128))
    amends_entry_id: Mapped[str | None] = mapped_column(String(64))
    chain_hash: Mapped[str | None] = mapped_column(String(64))  # ledger.integrity.chain (revision 0005)
    aggregate_hash: Mapped[str | None] = mapped_column(String(64))


class ChainHead(Base):
    """The last link of the hash chain: one row, moved in every write transaction (revision 0005)."""

    __tablename__ = "ledger_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # always 1
    position: Mapped[int] = mapped_column(BigInteger)
    chain_hash: Mapped[str] = mapped_column(String(64))
    entries: Mapped[int] = mapped_column(BigInteger)


class CredentialRow(Base):
    """The salted hash (argon2id) of each user's current credential; never the credential (revision 0006)."""

    __tablename__ = "ledger_credentials"

    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CommandRow(Base):
    __tablename__ = "ledger_commands"

    command_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    entry_ids: Mapped[str] = mapped_column(Text)  # space-separated, in recorded order
    fingerprint: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of the command (revision 0003)


def tune_sqlite(engine: Engine) -> None:
    """WAL journal and a generous busy timeout for every new SQLite connection.

    Writers then wait for each other instead of failing, and readers never block writers.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    engine.dispose()  # connections made before the listener get the pragmas on reconnect
