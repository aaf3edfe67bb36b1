"""Loading what the ledger has recorded: patients, escalations and a stratum's state.

``as_of`` reads an aggregate only up to its last version recorded by then, a version found
in the entry index, so no later event is decoded.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing_sqlalchemy.datastore import Transaction
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import func, select

from ledger.clock import Clock
from ledger.domain import escalation as esc_events
from ledger.domain.access import UserAccount, UserRegistered
from ledger.domain.aggregate import EntryLog
from ledger.domain.escalation import Escalation
from ledger.domain.patient import Patient
from ledger.domain.values import escalation_aggregate_id, patient_aggregate_id, user_aggregate_id
from ledger.errors import CommandRefused
from ledger.persistence import CredentialRow, EntryRow, EventStore
from ledger.protocol import Protocol
from ledger.state import StratumState, patient_state, stratum_state


class Records:
    """Loads aggregates from the event store (through its cache) and folds a stratum."""

    def __init__(self, store: EventStore, protocol: Protocol, clock: Clock) -> None:
        self.store = store
        self.protocol = protocol
        self.clock = clock

    def transaction(self, commit: bool = True) -> Transaction:
        return cast(SQLAlchemyApplicationRecorder, self.store.recorder).transaction(commit=commit)

    def exists(self, aggregate_id: UUID) -> bool:
        return bool(self.store.recorder.select_events(aggregate_id, limit=1))

    def load_patient(self, patient_id: str, as_of: datetime | None = None) -> Patient:
        """The patient's aggregate; with ``as_of``, only the events recorded by then are read."""
        aggregate = self._load(patient_aggregate_id(patient_id), as_of)
        if aggregate is None:
            when = f" as of {as_of.isoformat()}" if as_of else ""
            raise CommandRefused("PATIENT-UNKNOWN", f"patient {patient_id} is not enrolled{when}")
        return cast(Patient, aggregate)

    def load_escalation(self, stratum: str, as_of: datetime | None = None) -> Escalation | None:
        return cast(Escalation | None, self._load(escalation_aggregate_id(stratum), as_of))

    def load_user(self, user_id: str) -> UserAccount | None:
        return cast(UserAccount | None, self._load(user_aggregate_id(user_id), None))

    def user_accounts(self) -> list[UserAccount]:
        """Every registered user's account, in the order registered (deactivated users too)."""
        with self.transaction(commit=False) as session:
            query = select(EntryRow.aggregate_id).where(EntryRow.kind == UserRegistered.__name__).order_by(EntryRow.position)
            ids = session.execute(query).scalars().all()
        accounts = [cast(UserAccount | None, self._load(UUID(aggregate_id), None)) for aggregate_id in ids]
        return [account for account in accounts if account is not None]

    def has_users(self) -> bool:
        """Has any user been registered? From then on the ledger needs a credential (docs/access.md)."""
        with self.transaction(commit=False) as session:
            return session.execute(select(EntryRow.position).where(EntryRow.kind == UserRegistered.__name__).limit(1)).first() is not None

    def credential_hash(self, user_id: str) -> str | None:
        with self.transaction(commit=False) as session:
            return session.execute(select(CredentialRow.secret_hash).where(CredentialRow.user_id == user_id)).scalar()

    def _load(self, aggregate_id: UUID, as_of: datetime | None) -> Aggregate | None:
        """Load an aggregate, up to the last version recorded by ``as_of`` (from the entry index)."""
        version = None
        if as_of is not None:
            with self.transaction(commit=False) as session:
                version = session.execute(
                    select(func.max(EntryRow.aggregate_version)).where(EntryRow.aggregate_id == str(aggregate_id), EntryRow.recorded_at <= as_of)
                ).scalar()
            if version is None:
                return None
        try:
            aggregate = cast(EntryLog, self.store.repository.get(aggregate_id))
        except AggregateNotFoundError:
            return None
        if version is not None and version < aggregate.version:
            # the cached aggregate (a copy) cut back to what was recorded by then: no replay
            aggregate.entries = [e for e in aggregate.entries if e.version <= version]
            aggregate.version = version
        return aggregate

    def stratum_state_on(self, stratum: str, esc: Escalation | None, valid_on: date | None = None, as_of: datetime | None = None) -> StratumState:
        """The stratum's escalation folded with its phase I patients."""
        entries = esc.entries if esc else []
        patients = {}
        for entry in entries:
            if entry.kind == esc_events.PatientAssignedToDoseLevel.__name__:
                pid = entry.data["patient_id"]
                patients[pid] = patient_state(pid, self.load_patient(pid, as_of).entries, self.protocol, as_of=as_of, valid_on=valid_on)
        return stratum_state(stratum, entries, patients, self.protocol, as_of=as_of, valid_on=valid_on, on=valid_on or self.clock.today())
