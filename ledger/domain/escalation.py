"""Phase I dose escalation of one stratum: the ``Escalation`` aggregate and its events.

It records which patient joined which dose level and every escalation decision. Saving a
phase I enrollment also saves the stratum's escalation, so two enrollments racing for the
last place of a cohort conflict in the event store and the second is checked again.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.domain.aggregate import EntryLog
from ledger.domain.events import LedgerEvent
from ledger.domain.values import Decision, escalation_aggregate_id


class EscalationOpened(LedgerEvent, Aggregate.Created):
    stratum: str
    dose_levels_mg: list[int]


class PatientAssignedToDoseLevel(LedgerEvent):
    date_field: ClassVar[str | None] = "assigned_on"
    patient_id: str
    dose_mg: int
    assigned_on: date


class EscalationDecided(LedgerEvent):
    """An investigator's 3+3 decision for the level whose evaluation it concludes.

    ``basis`` lists the entry ids of the facts the rule rested on (enrollments and
    toxicities of the stratum's phase I patients, as known when decided); ``recommended``
    is what rule ESC-3PLUS3 gave then.
    """

    date_field: ClassVar[str | None] = "decided_on"
    decided_on: date
    dose_mg: int
    decision: Decision
    mtd_mg: int | None
    basis: list[str]
    recommended: str


class Escalation(EntryLog):
    """The escalation of one stratum: assignments and decisions, in recorded order."""

    @staticmethod
    def create_id(stratum: str) -> UUID:
        return escalation_aggregate_id(stratum)

    @classmethod
    def open(cls, **fields: Any) -> Escalation:
        return cls._create(EscalationOpened, **fields)

    @property
    def stratum(self) -> str:
        return str(self.entries[0].data["stratum"])
