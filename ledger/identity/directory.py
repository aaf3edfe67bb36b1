"""The ledger's users: registering and changing them, and signing in (docs/access.md).

Every change is a command recorded like any other (an admin's, checked by rule
ACCESS-ROLE); a credential is handed out once, as a token ``USER_ID:SECRET``, and kept only
as its argon2id hash. A failed sign-in is itself recorded (``AuthenticationFailed``), by the
system, with the user id that was tried and why it failed; the person trying is told only
that it failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.application import TrialLedger
from ledger.commands import ChangeUserRole, DeactivateUser, IssueCredential, ReactivateUser, RegisterUser, UserCommand
from ledger.domain.access import AuthenticationFailed
from ledger.domain.values import Actor, Role
from ledger.errors import CommandRefused, NotAuthenticated
from ledger.identity import credentials

AUTHENTICATION = Actor("system:authentication", Role.SYSTEM)


@dataclass(frozen=True)
class Issued:
    """A user and the token that signs them in, shown once."""

    user_id: str
    token: str


class Directory:
    """Users of one ledger."""

    def __init__(self, ledger: TrialLedger) -> None:
        self.ledger = ledger

    def bootstrap(self, user_id: str, printed_name: str, actor: Actor) -> Issued:
        """The first user of a ledger: an admin. Refused once the ledger has users."""
        if self.ledger.records.has_users():
            raise CommandRefused("USER-BOOTSTRAP", "this ledger has users; an admin registers more with `ledger user add`")
        return self.register(user_id, printed_name, Role.ADMIN, actor)

    def register(self, user_id: str, printed_name: str, role: Role, actor: Actor, reason: str | None = None) -> Issued:
        secret = credentials.new_secret()
        commands: list[UserCommand] = [
            RegisterUser(user_id=user_id, printed_name=printed_name, user_role=role, reason=reason),
            IssueCredential(user_id=user_id, secret_hash=credentials.hash_secret(secret)),
        ]
        for result in self.ledger.handle_batch(commands, actor):
            if isinstance(result, Exception):
                raise result
        return Issued(user_id, credentials.token(user_id, secret))

    def reissue(self, user_id: str, actor: Actor, reason: str | None = None) -> Issued:
        """A new credential for ``user_id``; the previous one stops working."""
        secret = credentials.new_secret()
        self.ledger.handle(IssueCredential(user_id=user_id, secret_hash=credentials.hash_secret(secret), reason=reason), actor)
        return Issued(user_id, credentials.token(user_id, secret))

    def change_role(self, user_id: str, role: Role, actor: Actor, reason: str | None = None) -> None:
        self.ledger.handle(ChangeUserRole(user_id=user_id, user_role=role, reason=reason), actor)

    def deactivate(self, user_id: str, actor: Actor, reason: str | None = None) -> None:
        self.ledger.handle(DeactivateUser(user_id=user_id, reason=reason), actor)

    def reactivate(self, user_id: str, actor: Actor, reason: str | None = None) -> None:
        self.ledger.handle(ReactivateUser(user_id=user_id, reason=reason), actor)

    def users(self) -> list[dict[str, Any]]:
        return [
            {
                "user_id": a.user_id,
                "printed_name": a.printed_name,
                "role": a.role.value,
                "active": a.active,
                "registered_at": a.entries[0].recorded_at,
                "registered_by": a.entries[0].recorded_by,
            }
            for a in self.ledger.records.user_accounts()
        ]

    def authenticate(self, token: str) -> Actor:
        """The user a token signs in, or ``NotAuthenticated`` (and the failure recorded)."""
        user_id, secret = credentials.parse_token(token)
        account = self.ledger.records.load_user(user_id) if user_id else None
        matched = credentials.matches(self.ledger.records.credential_hash(user_id) if account else None, secret)
        why = "unknown user" if account is None else "wrong credential" if not matched else "deactivated user" if not account.active else None
        if why is None and account is not None:
            return Actor(account.user_id, account.role)
        self.ledger.record_access(AuthenticationFailed, AUTHENTICATION, user_id=user_id[:128], why=str(why))
        raise NotAuthenticated(f"authentication failed for user {user_id or '(none)'}; check LEDGER_TOKEN (USER_ID:CREDENTIAL)")
