"""A patient's course through the trial: the ``Patient`` aggregate and its events.

The aggregate keeps every entry it was given, in recorded order; what the entries add up to
(cycle, dose, response, status ...) is computed by the pure folds in ``ledger.state``, so
that rules, queries and projections all see one derivation, at any transaction time and any
valid time. The aggregate only guards what needs no protocol: ids and the entry it amends.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.domain.aggregate import EntryLog
from ledger.domain.events import LedgerEvent
from ledger.domain.values import (
    Attribution,
    Cytogenetic,
    DiseaseStatus,
    EndReason,
    Mrd,
    Phase,
    Response,
    VitalStatus,
    patient_aggregate_id,
)


class PatientEnrolled(LedgerEvent, Aggregate.Created):
    date_field: ClassVar[str | None] = "enrolled_on"
    patient_id: str
    enrolled_on: date
    diagnosis: str  # a code; eligibility (ELIG-DIAGNOSIS) is a rule, not a type
    phase: Phase
    stratum: str
    cd22_percent: float
    abl_mutations: list[str]
    bsa_m2: float
    dose_level_mg: int | None
    birth_year: int | None
    sex: str | None
    site: str | None


class CycleStarted(LedgerEvent):
    date_field: ClassVar[str | None] = "started_on"
    cycle: int
    started_on: date


class BosutinibDoseRecorded(LedgerEvent):
    date_field: ClassVar[str | None] = "taken_on"
    taken_on: date
    dose_mg: int


class BosutinibDoseModified(LedgerEvent):
    date_field: ClassVar[str | None] = "effective_on"
    effective_on: date
    dose_mg: int


class InoInfusionRecorded(LedgerEvent):
    date_field: ClassVar[str | None] = "given_on"
    given_on: date
    dose_mg_m2: float
    started_at: datetime | None
    ended_at: datetime | None


class ToxicityReported(LedgerEvent):
    date_field: ClassVar[str | None] = "onset_on"
    onset_on: date
    term: str
    grade: int
    attribution: Attribution
    serious: bool
    hematologic: bool
    ctcae_version: str
    dlt: bool | None


class ToxicityResolved(LedgerEvent):
    date_field: ClassVar[str | None] = "resolved_on"
    toxicity_id: str
    resolved_on: date


class ResponseAssessed(LedgerEvent):
    date_field: ClassVar[str | None] = "assessed_on"
    assessed_on: date
    response: Response
    cytogenetic: Cytogenetic | None
    mrd: Mrd | None
    mrd_level: float | None


class TreatmentEnded(LedgerEvent):
    date_field: ClassVar[str | None] = "ended_on"
    ended_on: date
    end_reason: EndReason


class FollowUpRecorded(LedgerEvent):
    date_field: ClassVar[str | None] = "contacted_on"
    contacted_on: date
    vital_status: VitalStatus
    disease_status: DiseaseStatus | None


class DeathRecorded(LedgerEvent):
    date_field: ClassVar[str | None] = "died_on"
    died_on: date
    cause: str | None


class LostToFollowUp(LedgerEvent):
    """The patient can no longer be reached for follow-up (FU-WINDOW): nothing more is due."""

    date_field: ClassVar[str | None] = "lost_on"
    lost_on: date


class FollowUpMissed(LedgerEvent):
    """FU-SCHEDULE: follow-up visit ``visit``'s window closed with no contact (recorded by the scheduler)."""

    date_field: ClassVar[str | None] = "window_closed_on"
    visit: int
    due_on: date
    window_closed_on: date


class FollowUpCompleted(LedgerEvent):
    """FU-WINDOW: the follow-up year ended on ``completed_on`` (recorded by the scheduler)."""

    date_field: ClassVar[str | None] = "completed_on"
    completed_on: date


class DltEvaluationCompleted(LedgerEvent):
    """DLT-WINDOW: the patient's DLT window closed on ``window_closed_on`` without a DLT (recorded by the scheduler)."""

    date_field: ClassVar[str | None] = "window_closed_on"
    window_closed_on: date


class EntryCorrected(LedgerEvent):
    """Fields of an earlier entry corrected; the earlier entry stays as it was recorded.

    ``old_values`` keeps what the fields held before, so the audit trail shows old and new
    value per field (21 CFR 11.10(e); EMA 2023 §6.2).
    """

    amends_entry_id: str
    changes: dict[str, Any]
    old_values: dict[str, Any]


class EntryVoided(LedgerEvent):
    """An earlier entry counts as never having happened, from this entry's recording on."""

    amends_entry_id: str


#: the events that record a clinical fact and so may be corrected or voided
FACT_EVENTS: dict[str, type[LedgerEvent]] = {
    cls.__name__: cls
    for cls in (
        PatientEnrolled,
        CycleStarted,
        BosutinibDoseRecorded,
        BosutinibDoseModified,
        InoInfusionRecorded,
        ToxicityReported,
        ToxicityResolved,
        ResponseAssessed,
        TreatmentEnded,
        FollowUpRecorded,
        LostToFollowUp,
        DeathRecorded,
    )
}

#: the events the scheduler records because time passed: neither corrected nor voided by users
ELAPSED_EVENTS: dict[str, type[LedgerEvent]] = {cls.__name__: cls for cls in (FollowUpMissed, FollowUpCompleted, DltEvaluationCompleted)}


class Patient(EntryLog):
    """One study subject's course: every entry recorded about them, in recorded order."""

    @staticmethod
    def create_id(patient_id: str) -> UUID:
        return patient_aggregate_id(patient_id)

    @classmethod
    def enroll(cls, **fields: Any) -> Patient:
        return cls._create(PatientEnrolled, **fields)

    @property
    def patient_id(self) -> str:
        return str(self.entries[0].data["patient_id"])

    @property
    def stratum(self) -> str:
        return str(self.entries[0].data["stratum"])
