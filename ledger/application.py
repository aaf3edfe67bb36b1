"""The use cases: ``TrialLedger.handle(command, actor)`` is the one entry point for writers.

For each command, in one database transaction:

1. a ``command_id`` already recorded is acknowledged as a duplicate and records nothing;
2. the aggregates it touches are loaded (a patient; the stratum's escalation);
3. the policies check it against the state as recorded so far → refusal or go;
4. the aggregate records the fact (and, for an acknowledged deviation, a
   ``ProtocolDeviationRecorded`` entry per broken rule);
5. the events, their ``ledger_entries`` rows (each with its links in the hash chains of
   ``ledger.integrity.chain``), the chain's new head and the ``command_id`` are saved together.

A concurrent writer that changed the same aggregate first makes the save fail; the command
is then checked again against the new state, a bounded number of times.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, TypeVar, cast
from uuid import UUID, uuid4

from eventsourcing.application import Cache, LRUCache
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, OperationalError, PersistenceError, Recording
from eventsourcing_sqlalchemy.datastore import Transaction
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.exc import OperationalError as SQLOperationalError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ledger import outages
from ledger.clock import Clock
from ledger.commands import Command, IssueCredential
from ledger.domain.access import AccessRecord
from ledger.domain.escalation import Escalation
from ledger.domain.events import LedgerEvent
from ledger.domain.patient import Patient
from ledger.domain.values import Actor
from ledger.encoding import plain
from ledger.errors import ChainBroken, CommandRefused, CommitUnknown, ConcurrentWriteError, InvalidCommand, LedgerError, StoreUnavailable, Violation
from ledger.handlers import ChangesParser, Decider
from ledger.integrity import chain
from ledger.persistence import ChainHead, CommandRow, CredentialRow, EntryRow, EventStore, cache_known_current
from ledger.policies import access
from ledger.protocol import Protocol
from ledger.records import Records
from ledger.state import StratumState


@dataclass(frozen=True)
class Outcome:
    """What a command recorded: its entries, the deviations acknowledged, or a duplicate."""

    command: str
    entry_ids: list[str] = field(default_factory=list)
    deviations: list[Violation] = field(default_factory=list)
    duplicate: bool = False


_ENTRIES = cast(Table, EntryRow.__table__)
_COMMANDS = cast(Table, CommandRow.__table__)
_HEAD = cast(Table, ChainHead.__table__)
_CREDENTIALS = cast(Table, CredentialRow.__table__)
_IDS_PER_QUERY = 500
_T = TypeVar("_T")


@dataclass
class _Write:
    """One write transaction: the commands known by id, the chain's tips, and the rows it inserts before committing."""

    session: Session
    head: int | None  # the last event position committed
    commands: dict[str, tuple[list[str], str | None]]  # command id → entry ids, fingerprint
    chain: bytes  # the chain's last link
    tips: dict[str, bytes]  # aggregate id → its chain's last link, as far as known
    entry_rows: list[dict[str, Any]] = field(default_factory=list)
    command_rows: list[dict[str, Any]] = field(default_factory=list)
    credential_rows: list[dict[str, Any]] = field(default_factory=list)
    secured: bool | None = None  # has the ledger registered users (asked once per transaction)

    def index(self, recordings: list[Recording[UUID]], owners: dict[UUID, tuple[str | None, str | None]]) -> list[str]:
        """One ``ledger_entries`` row per recorded event, linked into the hash chains; the entry ids."""
        entry_ids = []
        for recording in recordings:
            ev = cast(LedgerEvent, recording.domain_event)
            stored = recording.notification
            data = ev.data()
            patient_id, stratum = owners[ev.originator_id]
            aggregate_id = str(ev.originator_id)
            row = {
                "position": stored.id,
                "entry_id": ev.entry_id,
                "aggregate_id": aggregate_id,
                "aggregate_version": ev.originator_version,
                "patient_id": data.get("patient_id", patient_id),
                "stratum": stratum,
                "kind": type(ev).__name__,
                "occurred_on": ev.occurred_on,
                "recorded_at": ev.timestamp,
                "recorded_by": ev.recorded_by,
                "role": ev.role.value,
                "command_id": ev.command_id,
                "amends_entry_id": data.get("amends_entry_id"),
            }
            digest = chain.record_digest(stored.id, ev.originator_id.bytes, stored.originator_version, stored.topic, stored.state, chain.index_text(row))
            self.chain = chain.link(self.chain, digest)
            tip = chain.link(self._tip(aggregate_id, ev.originator_version), digest)
            self.tips[aggregate_id] = tip
            row["chain_hash"], row["aggregate_hash"] = self.chain.hex(), tip.hex()
            self.entry_rows.append(row)
            entry_ids.append(str(ev.entry_id))
            self.head = max(self.head or 0, stored.id)
        return entry_ids

    def _tip(self, aggregate_id: str, version: int) -> bytes:
        if version == 1:
            return chain.GENESIS
        known = self.tips.get(aggregate_id)
        if known is None:
            last = self.session.execute(
                select(_ENTRIES.c.aggregate_hash).where(_ENTRIES.c.aggregate_id == aggregate_id).order_by(_ENTRIES.c.position.desc()).limit(1)
            ).scalar()
            known = bytes.fromhex(last) if last else chain.GENESIS
        return known

    def command(self, command_id: str, recorded_at: datetime, entry_ids: list[str], fingerprint: str) -> None:
        self.commands[command_id] = (entry_ids, fingerprint)
        self.command_rows.append({"command_id": command_id, "recorded_at": recorded_at, "entry_ids": " ".join(entry_ids), "fingerprint": fingerprint})

    def flush(self) -> None:
        """Insert the rows and move the chain's head, in the events' transaction."""
        if self.entry_rows:
            self.session.execute(insert(_ENTRIES), self.entry_rows)
            moved = self.session.execute(
                update(_HEAD).where(_HEAD.c.id == 1).values(
                    position=self.entry_rows[-1]["position"], chain_hash=self.chain.hex(), entries=_HEAD.c.entries + len(self.entry_rows)
                )
            )
            if cast(CursorResult[Any], moved).rowcount != 1:  # never write past a chain whose head was removed
                raise ChainBroken("the hash chain's head (table ledger_chain_head) is missing; nothing was recorded: run `ledger verify`")
        if self.command_rows:
            self.session.execute(insert(_COMMANDS), self.command_rows)
        for row in self.credential_rows:  # the user's previous credential stops working
            self.session.execute(delete(_CREDENTIALS).where(_CREDENTIALS.c.user_id == row["user_id"]))
            self.session.execute(insert(_CREDENTIALS), row)


class TrialLedger:
    """The trial's ledger: records commands as events and answers questions about them.

    ``max_attempts``: how many times a command is tried against a conflict with other writers
    (a lock wait that ran out, a unique index) before ``ConcurrentWriteError`` reports it.
    ``conflicts_retried`` counts, since this ledger was opened, the attempts made again after a
    conflict: each retry of ``handle``, and each batch of ``handle_batch`` that a conflict
    rolled back and that is recorded again command by command.
    """

    max_attempts = 8
    #: how long one attempt waits for another writer's lock on PostgreSQL (SQLite: the busy timeout, also 30 s)
    lock_wait_seconds = 30.0
    #: how long a writer waits for a database that cannot be reached before giving up (``ledger.outages``)
    outage_seconds = 60.0

    def __init__(self, store: EventStore, protocol: Protocol, clock: Clock, parse_changes: ChangesParser) -> None:
        self.store = store
        self.protocol = protocol
        self.clock = clock
        self.parse_changes = parse_changes
        self.records = Records(store, protocol, clock)
        self.decider = Decider(self.records, protocol, clock, parse_changes)
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._notification_id = self.recorder.events_record_cls.id
        self._head: int | None = None  # the last event position this ledger committed; None: unknown
        self._tips: dict[str, bytes] = {}  # aggregate id → last link of its hash chain, while the cache is current
        self._secured = False  # users registered: once true, true for good
        self.on_outage: Callable[[str], None] | None = None  # told each time a write waits for the database
        self.conflicts_retried = 0

    @property
    def recorder(self) -> SQLAlchemyApplicationRecorder:
        return cast(SQLAlchemyApplicationRecorder, self.store.recorder)

    @property
    def engine(self) -> Engine:
        return cast(Engine, self.recorder.datastore.engine)

    def transaction(self, commit: bool = True) -> Transaction:
        """The store's transaction: events and the ledger's own rows commit together."""
        return self.recorder.transaction(commit=commit)

    def close(self) -> None:
        """Release the store and its database connections."""
        self.store.close()
        self.engine.dispose()

    # --- the write path ---------------------------------------------------------------

    def handle(self, command: Command, actor: Actor) -> Outcome:
        """Record ``command`` for ``actor``, or raise a ``LedgerError`` and record nothing."""
        return self._through_outages(lambda: self._handle_with_retries(command, actor), [command])

    def _handle_with_retries(self, command: Command, actor: Actor) -> Outcome:
        for attempt in range(self.max_attempts):
            try:
                return self._handle_once(command, actor)
            except (IntegrityError, OperationalError, SQLIntegrityError, SQLOperationalError) as conflict:
                if not _is_conflict(conflict):
                    raise
                if attempt + 1 == self.max_attempts:
                    break
                self.conflicts_retried += 1
                time.sleep(0.005 * (2**attempt))
        raise ConcurrentWriteError(
            f"{command.name}: the record kept changing under {self.max_attempts} attempts by other writers; "
            "nothing was recorded, send it again"
        )

    def handle_batch(self, commands: Sequence[Command], actor: Actor, stop_at_refusal: bool = True) -> list[Outcome | LedgerError]:
        """Record several commands in one transaction, each atomic on its own.

        A refused or invalid command records nothing (every rule is checked before anything
        is written) and is answered with its error in the result list, in order. With
        ``stop_at_refusal`` the batch ends at the first refusal (what came before it is
        committed). A conflict with a concurrent writer rolls the whole batch back; it is then
        recorded command by command, each with the retries of ``handle``.
        """
        return self._through_outages(lambda: self._batch(commands, actor, stop_at_refusal), commands)

    def _batch(self, commands: Sequence[Command], actor: Actor, stop_at_refusal: bool) -> list[Outcome | LedgerError]:
        try:
            with self._writing(commands) as write:
                results: list[Outcome | LedgerError] = []
                for command in commands:
                    try:
                        results.append(self._record(write, command, actor))
                    except (CommandRefused, InvalidCommand) as refusal:
                        results.append(refusal)
                        if stop_at_refusal:
                            break
                return results
        except (IntegrityError, OperationalError, SQLIntegrityError, SQLOperationalError) as conflict:
            if not _is_conflict(conflict):
                raise
            self.conflicts_retried += 1
        return self._one_by_one(commands, actor, stop_at_refusal)

    def _one_by_one(self, commands: Sequence[Command], actor: Actor, stop_at_refusal: bool) -> list[Outcome | LedgerError]:
        results: list[Outcome | LedgerError] = []
        for command in commands:
            try:
                results.append(self.handle(command, actor))
            except (CommandRefused, InvalidCommand) as refusal:
                results.append(refusal)
                if stop_at_refusal:
                    break
            except ConcurrentWriteError as conflict:
                if not results:
                    raise
                raise ConcurrentWriteError(f"{conflict} (the {len(results)} command(s) before it in the batch were recorded)") from conflict
        return results

    def _through_outages(self, attempt: Callable[[], _T], commands: Sequence[Command]) -> _T:
        """Run ``attempt``, waiting out a database that cannot be reached (``ledger.outages``) for ``outage_seconds``.

        A failure before the commit recorded nothing, so the attempt is made again. A connection
        lost while committing leaves it unknown whether the commit happened: the attempt is made
        again only when every command has a ``command_id`` (a commit that did happen is then
        acknowledged as a duplicate); otherwise the user is told to check.
        """
        deadline = time.monotonic() + self.outage_seconds
        pause = 0.25
        while True:
            try:
                return attempt()
            except CommitUnknown:
                if not commands or not all(c.command_id for c in commands):
                    raise
                error_text = "the connection was lost while committing"
            except (OperationalError, SQLOperationalError, PersistenceError, SQLAlchemyError) as error:
                if outages.failure_of(error) is not outages.Failure.UNREACHABLE:
                    raise
                error_text = outages.explain(error).split(" (", 1)[0]
            if time.monotonic() + pause > deadline:
                raise StoreUnavailable(
                    f"the database could not be reached for {self.outage_seconds:g} s; nothing more was recorded: "
                    "check that it is running and LEDGER_DATABASE_URL, then run the command again"
                )
            if self.on_outage is not None:
                self.on_outage(f"{error_text}; trying again in {pause:g} s")
            time.sleep(pause)
            pause = min(pause * 2, 2.0)  # so a database back again is used within 2 s

    def _forget_cached(self) -> None:
        """Drop cached aggregates: within a rolled-back transaction they may have seen its events."""
        self._head = None
        self._tips = {}
        repository = self.store.repository
        if isinstance(repository.cache, LRUCache):
            repository.cache = LRUCache(maxsize=repository.cache.maxsize)
        elif repository.cache is not None:
            repository.cache = Cache()

    def _handle_once(self, command: Command, actor: Actor) -> Outcome:
        with self._writing([command]) as write:
            return self._record(write, command, actor)

    @contextmanager
    def _writing(self, commands: Sequence[Command]) -> Iterator[_Write]:
        """A write transaction: the write lock, then the commands' prior ids, then the rows.

        When no other writer committed an event since this ledger's own last commit, its
        cached aggregates are current and are used without asking the store for newer events.
        """
        committing = False
        try:
            with self.transaction() as session:
                self._begin_write(session)
                head = session.execute(select(func.max(self._notification_id))).scalar()
                current = head is not None and head == self._head
                if not current:  # another writer committed since: nothing cached can be trusted as it is
                    self._forget_cached()
                last_link = session.execute(select(_HEAD.c.chain_hash).where(_HEAD.c.id == 1)).scalar()
                last = bytes.fromhex(last_link) if last_link else chain.GENESIS
                write = _Write(session, head, self._prior_commands(session, commands), last, dict(self._tips))
                with cache_known_current() if current else nullcontext():
                    yield write
                write.flush()
                committing = True
            self._head = write.head
            self._tips = write.tips
        except ChainBroken:
            self._forget_cached()
            raise
        except LedgerError:  # refused before anything was written: the cache holds nothing of it
            raise
        except BaseException as error:
            self._forget_cached()
            if committing and outages.failure_of(error) is outages.Failure.UNREACHABLE:
                raise CommitUnknown(
                    "the connection to the database was lost while committing: the command may or may not have been recorded; "
                    "look it up (ledger patient history, the feed) or send it again with a command_id"
                ) from error
            raise

    def _begin_write(self, session: Session) -> None:
        """Take the store's write lock before reading: writers queue instead of conflicting.

        It also makes ``recorded_at`` (read from the clock after this) follow commit order
        across writers, so "as of" a time never shows an entry committed after one it hides.
        """
        if self._sqlite:
            session.execute(text("BEGIN IMMEDIATE"))  # waits up to the connection's busy timeout
        else:  # a bounded wait, as SQLite's: a lock held longer is a conflict, retried up to max_attempts, then reported
            wait_ms = round(self.lock_wait_seconds * 1000)
            session.execute(text(f"SET LOCAL lock_timeout = {wait_ms}; LOCK TABLE {self.recorder.events_table_name} IN EXCLUSIVE MODE"))

    def _prior_commands(self, session: Session, commands: Sequence[Command]) -> dict[str, tuple[list[str], str | None]]:
        """The entry ids and fingerprints of the commands' ids recorded before, by id."""
        ids = sorted({c.command_id for c in commands if c.command_id is not None})
        prior: dict[str, tuple[list[str], str | None]] = {}
        for start in range(0, len(ids), _IDS_PER_QUERY):
            rows = session.execute(
                select(_COMMANDS.c.command_id, _COMMANDS.c.entry_ids, _COMMANDS.c.fingerprint).where(
                    _COMMANDS.c.command_id.in_(ids[start : start + _IDS_PER_QUERY])
                )
            )
            prior.update({row.command_id: (row.entry_ids.split(), row.fingerprint) for row in rows})
        return prior

    def _record(self, write: _Write, command: Command, actor: Actor) -> Outcome:
        if write.secured is None:
            write.secured = self.secured
        if write.secured:  # before anything is answered, a duplicate included
            access.check(command.name, actor.role, actor.user)
        fingerprint = command_fingerprint(command)
        if command.command_id is not None and command.command_id in write.commands:
            entry_ids, recorded_fingerprint = write.commands[command.command_id]
            if recorded_fingerprint is not None and recorded_fingerprint != fingerprint:
                raise CommandRefused(
                    "COMMAND-ID", f"command id {command.command_id} was already used for a different command; nothing was recorded"
                )
            return Outcome(command.name, entry_ids, duplicate=True)
        aggregates, deviations = self.decider.decide(command, actor)
        owners = {a.id: _owner(a) for a in aggregates}
        recordings = self.store.save(*aggregates)
        cache = self.store.repository.cache
        if cache is not None:  # the saved versions, for the next command (a rollback empties the cache)
            for aggregate in aggregates:
                cache.put(aggregate.id, aggregate)
        entry_ids = write.index(recordings, owners)
        if isinstance(command, IssueCredential):
            write.credential_rows.append({"user_id": command.user_id, "secret_hash": command.secret_hash, "issued_at": self.clock.now()})
        if command.command_id is not None:
            write.command(command.command_id, self.clock.now(), entry_ids, fingerprint)
        return Outcome(command.name, entry_ids, deviations)

    def record_access(self, event_class: type[LedgerEvent], actor: Actor, **data: Any) -> str:
        """Record an access event (``ledger.domain.access``): a failed sign-in, an export, an audited read."""
        entry_id = str(uuid4())
        with self._writing([]) as write:  # the time is read under the write lock, as for every entry
            envelope = {
                "entry_id": entry_id,
                "occurred_on": self.clock.today(),
                "timestamp": self.clock.now(),
                "recorded_by": actor.user,
                "role": actor.role,
                "reason": None,
                "source": None,
                "protocol_version": self.protocol.version,
                "command_id": None,
            }
            record = AccessRecord.record_new(event_class, **envelope, **data)
            write.index(self.store.save(record), {record.id: (None, None)})
        return entry_id

    @property
    def last_committed(self) -> int | None:
        """The last position this ledger committed (``None`` before its first write)."""
        return self._head

    @property
    def secured(self) -> bool:
        """Has a user been registered? From then on every command checks its role (rule ACCESS-ROLE)."""
        if not self._secured:
            self._secured = self._through_outages(self.records.has_users, [])
        return self._secured

    def load_patient(self, patient_id: str, as_of: datetime | None = None) -> Patient:
        """The patient's aggregate; with ``as_of``, only the events recorded by then are read."""
        return self.records.load_patient(patient_id, as_of)

    def load_escalation(self, stratum: str, as_of: datetime | None = None) -> Escalation | None:
        return self.records.load_escalation(stratum, as_of)

    def stratum_state_on(self, stratum: str, esc: Escalation | None, valid_on: date | None = None, as_of: datetime | None = None) -> StratumState:
        """The stratum's escalation folded with its phase I patients."""
        return self.records.stratum_state_on(stratum, esc, valid_on, as_of)


def _owner(aggregate: Aggregate) -> tuple[str | None, str | None]:
    """The patient and stratum an aggregate's entries are indexed under."""
    if isinstance(aggregate, Patient):
        return aggregate.patient_id, aggregate.stratum
    if isinstance(aggregate, Escalation):
        return None, aggregate.stratum
    return None, None  # users and access records


def _is_conflict(error: Exception) -> bool:
    """An optimistic-concurrency or lock conflict that a fresh attempt may resolve."""
    if isinstance(error, (IntegrityError, SQLIntegrityError)):
        return True
    message = str(error).lower()
    # a lock wait that ran out (SQLite's "database is locked", PostgreSQL's "canceling statement due to lock timeout"),
    # a deadlock, a serialization failure
    return any(sign in message for sign in ("locked", "lock timeout", "deadlock", "could not serialize"))


def command_fingerprint(command: Command) -> str:
    """SHA-256 of the command's name and fields (its ``command_id`` and any credential aside): what a re-send must match."""
    fields_ = {f.name: getattr(command, f.name) for f in fields(command) if f.name not in ("command_id", "credential")}
    canonical = json.dumps({"command": command.name, **plain(fields_)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


