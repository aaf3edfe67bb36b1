"""Why the ledger said no, as one small hierarchy::

    LedgerError
    ├── InvalidCommand        malformed input: names the field; nothing ran     (exit 1)
    ├── CommandRefused        a rule of protocol.md (or of the ledger) said no  (exit 1)
    │   └── RuleViolations    one or more protocol rules, each with its id
    ├── ConcurrentWriteError  other writers kept changing the same record      (exit 4)
    ├── StoreUnavailable      the database cannot be reached or opened          (exit 5)
    │   └── CommitUnknown     lost while committing: look the command up        (exit 5)
    ├── DatabaseBehind        the database's tables are at an older revision    (exit 6)
    ├── ChainBroken           the hash chain's head is gone: nothing is written (exit 3)
    ├── NotAuthenticated      no valid credential for a ledger with users       (exit 7)
    └── RelayError            the relay's broker or stream (ledger.streams.relay) (exit 9)

Every refusal changes nothing. ``rule_id`` is an id of protocol.md, or one of the ledger's
own (``PATIENT-UNKNOWN``, ``PATIENT-ENROLLED``, ``ENTRY-TARGET``, ``DEVIATION``), listed in
docs/rules.md.
"""

from __future__ import annotations

from dataclasses import dataclass


class LedgerError(Exception):
    """Base of every error the ledger reports to its users."""


class InvalidCommand(LedgerError):
    """The input is malformed; ``errors`` maps each offending field to what is wrong."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {msg}" for name, msg in sorted(errors.items())))


@dataclass(frozen=True)
class Violation:
    """One rule that a command breaks: the rule id and a sentence a coordinator understands."""

    rule_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.message}"


class CommandRefused(LedgerError):
    """A rule refused the command; nothing was recorded."""

    def __init__(self, rule_id: str, message: str) -> None:
        self.rule_id = rule_id
        self.message = message
        super().__init__(f"{rule_id}: {message}")

    @property
    def violations(self) -> list[Violation]:
        return [Violation(self.rule_id, self.message)]


class RuleViolations(CommandRefused):
    """Protocol rules refused the command; with ``deviation`` and a reason it may be recorded."""

    def __init__(self, violations: list[Violation]) -> None:
        self._violations = list(violations)
        first = violations[0]
        super().__init__(first.rule_id, first.message)
        self.args = ("; ".join(str(v) for v in violations),)

    @property
    def violations(self) -> list[Violation]:
        return list(self._violations)


class ConcurrentWriteError(LedgerError):
    """The record kept changing under the command; it was not recorded and may be re-sent."""


class StoreUnavailable(LedgerError):
    """The event store cannot be reached or opened."""


class CommitUnknown(StoreUnavailable):
    """The connection was lost while committing: whether the command was recorded is not known."""


class DatabaseBehind(LedgerError):
    """The database was made by an older version of the ledger: ``ledger migrate`` upgrades it."""


class NotAuthenticated(LedgerError):
    """The ledger has users and the credential given is missing, wrong, or a deactivated user's."""


class ChainBroken(LedgerError):
    """The hash chain cannot be extended (its head row is missing); nothing was recorded."""
