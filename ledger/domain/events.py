"""The envelope every stored event carries, and the events shared by both aggregates.

Every fact is an immutable event whose class name is a past-tense verb phrase. Besides its
own fields each carries the envelope of contract.md:

- ``entry_id``: a stable id that auditors, corrections and downstream consumers cite;
- ``occurred_on``: the clinical date the fact is about (valid time);
- ``timestamp``: when it was stored, from the ledger's clock in UTC (transaction time,
  shown as ``recorded_at``; never supplied by a client);
- ``recorded_by``, ``role``, ``reason``, ``source``, ``protocol_version``, ``command_id``.

Event classes are stored under their module path (``ledger.domain.patient:CycleStarted``);
moving one needs ``eventsourcing.utils.register_topic`` or stored events stop loading.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from functools import cache
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from ledger.domain.values import Entry, Role, SignatureMeaning, SignatureScope

ENVELOPE_FIELDS = frozenset(
    {
        "originator_id",
        "originator_version",
        "originator_topic",
        "timestamp",
        "entry_id",
        "occurred_on",
        "recorded_by",
        "role",
        "reason",
        "source",
        "protocol_version",
        "command_id",
    }
)


class LedgerEvent(Aggregate.Event):
    """Base of every event in the ledger: the envelope, and how it becomes an ``Entry``."""

    #: the field of the event that holds its clinical date (``None``: ``occurred_on`` itself)
    date_field: ClassVar[str | None] = None

    entry_id: str
    occurred_on: date
    recorded_by: str
    role: Role
    reason: str | None
    source: str | None
    protocol_version: str
    command_id: str | None

    def data(self) -> dict[str, Any]:
        """The fact's own fields, without the envelope."""
        return {name: getattr(self, name) for name in _data_fields(type(self))}

    def as_entry(self) -> Entry:
        return Entry(  # in Entry's field order: a third faster than by keyword, and a rebuild makes one per event
            self.entry_id, type(self).__name__, self.originator_version, self.occurred_on, self.timestamp, self.recorded_by,
            self.role.value, self.reason, self.source, self.protocol_version, self.command_id, self.data(),
        )

    def apply(self, aggregate: Aggregate) -> None:
        aggregate.entries.append(self.as_entry())  # type: ignore[attr-defined]


@cache
def _data_fields(cls: type[LedgerEvent]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls) if f.name not in ENVELOPE_FIELDS)


class ProtocolDeviationRecorded(LedgerEvent):
    """A fact that broke a rule was recorded as an acknowledged protocol deviation.

    ``deviating_entry_id`` is the entry of the fact itself; ``rule_id`` names the rule of
    protocol.md it broke and ``message`` says how.
    """

    rule_id: str
    message: str
    deviating_entry_id: str


class RecordSigned(LedgerEvent):
    """An electronic signature (21 CFR 11.50): who signed, their printed name, what it means,
    what it covers (``scope``: a ``cycle``, the casebook, or the decision ``decision_entry_id``)
    and the SHA-256 of the exact data signed (``ledger.policies.signatures``)."""

    signer: str
    printed_name: str
    meaning: SignatureMeaning
    scope: SignatureScope
    cycle: int | None
    decision_entry_id: str | None
    state_hash: str


class SignatureInvalidated(LedgerEvent):
    """The data a signature covers changed (entry ``changed_by_entry_id``): re-review required."""

    signature_entry_id: str
    changed_by_entry_id: str
