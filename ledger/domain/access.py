"""Who may use the ledger, and what they did with it besides recording facts.

``UserAccount`` (one per user id) records registration, role changes, deactivation and
each new credential (never the credential itself: its salted hash lives in the table
``ledger_credentials``). ``AccessRecord`` holds a single event each — a failed
authentication, an export, a read by an auditor or a sponsor — so recording one never waits
for, or conflicts with, another.
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from ledger.domain.aggregate import EntryLog
from ledger.domain.events import LedgerEvent
from ledger.domain.values import Role, user_aggregate_id


class UserRegistered(LedgerEvent, Aggregate.Created):
    user_id: str
    printed_name: str
    user_role: Role


class UserRoleChanged(LedgerEvent):
    user_id: str
    user_role: Role
    previous_role: Role


class UserDeactivated(LedgerEvent):
    user_id: str


class UserReactivated(LedgerEvent):
    user_id: str


class CredentialIssued(LedgerEvent):
    """A new credential replaced the user's previous one (which stops working)."""

    user_id: str


class UserAccount(EntryLog):
    """One user: printed name, role and whether they may sign in, from their entries."""

    @staticmethod
    def create_id(user_id: str) -> UUID:
        return user_aggregate_id(user_id)

    @classmethod
    def register(cls, **fields: Any) -> UserAccount:
        return cls._create(UserRegistered, **fields)

    @property
    def user_id(self) -> str:
        return str(self.entries[0].data["user_id"])

    @property
    def printed_name(self) -> str:
        return str(self.entries[0].data["printed_name"])

    @property
    def role(self) -> Role:
        changes = [e for e in self.entries if e.kind in (UserRegistered.__name__, UserRoleChanged.__name__)]
        return Role(changes[-1].data["user_role"])

    @property
    def active(self) -> bool:
        switches = [e.kind for e in self.entries if e.kind in (UserDeactivated.__name__, UserReactivated.__name__)]
        return not switches or switches[-1] == UserReactivated.__name__


class AuthenticationFailed(LedgerEvent, Aggregate.Created):
    """Someone could not sign in as ``user_id`` (which may not exist); ``why`` says what failed."""

    user_id: str
    why: str


class AuditExported(LedgerEvent, Aggregate.Created):
    """The audit trail was exported: the format, the filters and how many entries went out."""

    export_format: str
    filters: dict[str, Any]
    entries: int


class RecordsViewed(LedgerEvent, Aggregate.Created):
    """An auditor or a sponsor read the ledger: which view, with which arguments."""

    view: str
    arguments: dict[str, Any]


class AccessRecord(EntryLog):
    """A single access event under an id of its own."""

    @classmethod
    def record_new(cls, event_class: type[LedgerEvent], **fields: Any) -> AccessRecord:
        return cls._create(cast("type[Aggregate.Created]", event_class), id=uuid4(), **fields)
