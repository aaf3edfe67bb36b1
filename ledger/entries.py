"""What every decider shares: recording an entry on an aggregate with the command's envelope.

``EntryWriter.append`` gives the new event its entry id, its valid date, the clock's time,
the actor and role, and the command's reason, source and id; the deciders of clinical facts
(``ledger.handlers``), of users (``ledger.identity.accounts``) and of signatures
(``ledger.signing``) all record through it.
"""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import date
from typing import Any

from ledger.clock import Clock
from ledger.commands import Command
from ledger.domain.aggregate import EntryLog
from ledger.domain.events import LedgerEvent
from ledger.domain.values import Actor
from ledger.protocol import Protocol
from ledger.records import Records

COMMON_FIELDS = {"reason", "deviation", "source", "command_id", "patient_id"}


class EntryWriter:
    def __init__(self, records: Records, protocol: Protocol, clock: Clock) -> None:
        self.records = records
        self.protocol = protocol
        self.clock = clock

    def append(
        self, aggregate: EntryLog, event_class: type[LedgerEvent], cmd: Command, actor: Actor, occurred_on: date, data: dict[str, Any]
    ) -> str:
        entry_id = new_entry_id()
        aggregate.record(event_class, **self.envelope(cmd, actor, occurred_on, entry_id), **data)
        return entry_id

    def envelope(self, cmd: Command, actor: Actor, occurred_on: date, entry_id: str) -> dict[str, Any]:
        return {
            "entry_id": entry_id,
            "occurred_on": occurred_on,
            "timestamp": self.clock.now(),
            "recorded_by": actor.user,
            "role": actor.role,
            "reason": cmd.reason,
            "source": cmd.source,
            "protocol_version": self.protocol.version,
            "command_id": cmd.command_id,
        }


def new_entry_id() -> str:
    return str(uuid.uuid4())


def fields_of(cmd: Command) -> dict[str, Any]:
    """The command's own fields (the envelope's aside)."""
    return {f.name: getattr(cmd, f.name) for f in fields(cmd) if f.name not in COMMON_FIELDS}
