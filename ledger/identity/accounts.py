"""Deciding a change to the ledger's users: registering, role changes, (de)activation, credentials.

Rules USER-EXISTS, USER-UNKNOWN, USER-BOOTSTRAP (the first user is an admin), USER-INACTIVE,
USER-ACTIVE and USER-LAST-ADMIN (the last active admin may be neither demoted nor
deactivated). Who may send these commands at all is rule ACCESS-ROLE (admins).
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from ledger.commands import ChangeUserRole, DeactivateUser, IssueCredential, ReactivateUser, RegisterUser, UserCommand
from ledger.domain import access as access_events
from ledger.domain.access import UserAccount
from ledger.domain.events import LedgerEvent
from ledger.domain.values import Actor, Role
from ledger.entries import EntryWriter, fields_of, new_entry_id
from ledger.errors import CommandRefused, InvalidCommand


class AccountDecider(EntryWriter):
    def decide(self, cmd: UserCommand, actor: Actor) -> list[Aggregate]:
        """Register a user or change one; the first user of a ledger is its bootstrap admin."""
        account = self.records.load_user(cmd.user_id)
        if isinstance(cmd, RegisterUser):
            if account is not None:
                raise CommandRefused("USER-EXISTS", f"user {cmd.user_id} is already registered")
            if cmd.user_role is Role.SYSTEM:
                raise InvalidCommand({"user_role": "system is the scheduler's role, not a user's"})
            if cmd.user_role is not Role.ADMIN and not self.records.has_users():
                raise CommandRefused("USER-BOOTSTRAP", "the first user of a ledger is its admin; register an admin first")
            return [UserAccount.register(**self.envelope(cmd, actor, self.clock.today(), new_entry_id()), **fields_of(cmd))]
        if account is None:
            raise CommandRefused("USER-UNKNOWN", f"there is no user {cmd.user_id}")
        event_class, data = self._user_change(cmd, account)
        self.append(account, event_class, cmd, actor, self.clock.today(), {"user_id": cmd.user_id, **data})
        return [account]

    def _user_change(self, cmd: UserCommand, account: UserAccount) -> tuple[type[LedgerEvent], dict[str, Any]]:
        if isinstance(cmd, ChangeUserRole):
            if cmd.user_role is Role.SYSTEM:
                raise InvalidCommand({"user_role": "system is the scheduler's role, not a user's"})
            if cmd.user_role is account.role:
                raise InvalidCommand({"user_role": f"user {cmd.user_id} already acts as {cmd.user_role.value}"})
            self._keep_an_admin(account)
            return access_events.UserRoleChanged, {"user_role": cmd.user_role, "previous_role": account.role}
        if isinstance(cmd, DeactivateUser):
            if not account.active:
                raise CommandRefused("USER-INACTIVE", f"user {cmd.user_id} is already deactivated")
            self._keep_an_admin(account)
            return access_events.UserDeactivated, {}
        if isinstance(cmd, ReactivateUser):
            if account.active:
                raise CommandRefused("USER-ACTIVE", f"user {cmd.user_id} is active")
            return access_events.UserReactivated, {}
        assert isinstance(cmd, IssueCredential)
        return access_events.CredentialIssued, {}

    def _keep_an_admin(self, account: UserAccount) -> None:
        """USER-LAST-ADMIN: the last active admin may be neither demoted nor deactivated."""
        if account.role is not Role.ADMIN or not account.active:
            return
        others = [a for a in self.records.user_accounts() if a.user_id != account.user_id]
        if not any(a.active and a.role is Role.ADMIN for a in others):
            raise CommandRefused("USER-LAST-ADMIN", f"{account.user_id} is the last active admin; register another admin first")
