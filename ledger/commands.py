"""The typed commands of contract.md: what a writer asks the ledger to record.

Interfaces (CLI, import, HTTP) build these from input with the marshmallow schemas; the
application and the policies see only these typed values. The fields of a fact's command
have the names of the fields of the event that records it, so a correction can rebuild the
command an entry would have come from and check it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar

from ledger.domain.values import (
    Attribution,
    Cytogenetic,
    Decision,
    DiseaseStatus,
    EndReason,
    Mrd,
    Phase,
    Response,
    Role,
    SignatureMeaning,
    SignatureScope,
    VitalStatus,
)


@dataclass(frozen=True, kw_only=True)
class Command:
    """Fields every command may carry (contract.md)."""

    name: ClassVar[str]
    #: the field holding the command's clinical date
    date_field: ClassVar[str]
    reason: str | None = None
    deviation: bool = False
    source: str | None = None
    command_id: str | None = None

    @property
    def occurred_on(self) -> date:
        value = getattr(self, self.date_field)
        assert isinstance(value, date)
        return value


@dataclass(frozen=True, kw_only=True)
class PatientCommand(Command):
    patient_id: str


@dataclass(frozen=True, kw_only=True)
class EnrollPatient(PatientCommand):
    name = "enroll_patient"
    date_field = "enrolled_on"
    enrolled_on: date
    diagnosis: str
    phase: Phase
    cd22_percent: float
    abl_mutations: list[str]
    bsa_m2: float
    stratum: str = "default"
    birth_year: int | None = None
    sex: str | None = None
    site: str | None = None


@dataclass(frozen=True, kw_only=True)
class StartCycle(PatientCommand):
    name = "start_cycle"
    date_field = "started_on"
    cycle: int
    started_on: date


@dataclass(frozen=True, kw_only=True)
class RecordBosutinibDose(PatientCommand):
    name = "record_bosutinib_dose"
    date_field = "taken_on"
    taken_on: date
    dose_mg: int


@dataclass(frozen=True, kw_only=True)
class ModifyBosutinibDose(PatientCommand):
    name = "modify_bosutinib_dose"
    date_field = "effective_on"
    effective_on: date
    dose_mg: int


@dataclass(frozen=True, kw_only=True)
class RecordInoInfusion(PatientCommand):
    name = "record_ino_infusion"
    date_field = "given_on"
    given_on: date
    dose_mg_m2: float
    started_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ReportToxicity(PatientCommand):
    name = "report_toxicity"
    date_field = "onset_on"
    onset_on: date
    term: str
    grade: int
    attribution: Attribution
    serious: bool = False
    hematologic: bool = False
    ctcae_version: str = "5.0"
    dlt: bool | None = None


@dataclass(frozen=True, kw_only=True)
class ResolveToxicity(PatientCommand):
    name = "resolve_toxicity"
    date_field = "resolved_on"
    toxicity_id: str
    resolved_on: date


@dataclass(frozen=True, kw_only=True)
class AssessResponse(PatientCommand):
    name = "assess_response"
    date_field = "assessed_on"
    assessed_on: date
    response: Response
    cytogenetic: Cytogenetic | None = None
    mrd: Mrd | None = None
    mrd_level: float | None = None


@dataclass(frozen=True, kw_only=True)
class EndTreatment(PatientCommand):
    name = "end_treatment"
    date_field = "ended_on"
    ended_on: date
    end_reason: EndReason


@dataclass(frozen=True, kw_only=True)
class RecordFollowUp(PatientCommand):
    name = "record_follow_up"
    date_field = "contacted_on"
    contacted_on: date
    vital_status: VitalStatus
    disease_status: DiseaseStatus | None = None


@dataclass(frozen=True, kw_only=True)
class RecordLostToFollowUp(PatientCommand):
    name = "record_lost_to_follow_up"
    date_field = "lost_on"
    lost_on: date


@dataclass(frozen=True, kw_only=True)
class RecordFollowUpMissed(PatientCommand):
    """The scheduler's: a follow-up visit's window closed with no contact (FU-SCHEDULE)."""

    name = "record_follow_up_missed"
    date_field = "window_closed_on"
    visit: int
    due_on: date
    window_closed_on: date


@dataclass(frozen=True, kw_only=True)
class CompleteFollowUp(PatientCommand):
    """The scheduler's: the follow-up year is over (FU-WINDOW)."""

    name = "complete_follow_up"
    date_field = "completed_on"
    completed_on: date


@dataclass(frozen=True, kw_only=True)
class CompleteDltEvaluation(PatientCommand):
    """The scheduler's: the DLT window closed without a DLT (DLT-WINDOW)."""

    name = "complete_dlt_evaluation"
    date_field = "window_closed_on"
    window_closed_on: date


@dataclass(frozen=True, kw_only=True)
class RecordDeath(PatientCommand):
    name = "record_death"
    date_field = "died_on"
    died_on: date
    cause: str | None = None


@dataclass(frozen=True, kw_only=True)
class DecideEscalation(Command):
    name = "decide_escalation"
    date_field = "decided_on"
    stratum: str
    decided_on: date
    dose_mg: int
    decision: Decision
    mtd_mg: int | None = None


@dataclass(frozen=True, kw_only=True)
class CorrectEntry(PatientCommand):
    name = "correct_entry"
    entry_id: str
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class VoidEntry(PatientCommand):
    name = "void_entry"
    entry_id: str


COMMANDS: dict[str, type[Command]] = {
    cls.name: cls
    for cls in (
        EnrollPatient,
        StartCycle,
        RecordBosutinibDose,
        ModifyBosutinibDose,
        RecordInoInfusion,
        ReportToxicity,
        ResolveToxicity,
        AssessResponse,
        EndTreatment,
        RecordFollowUp,
        RecordLostToFollowUp,
        RecordDeath,
        DecideEscalation,
        CorrectEntry,
        VoidEntry,
    )
}

#: the command each fact event records (event class name → command class)
COMMAND_OF_EVENT: dict[str, type[PatientCommand]] = {
    "PatientEnrolled": EnrollPatient,
    "CycleStarted": StartCycle,
    "BosutinibDoseRecorded": RecordBosutinibDose,
    "BosutinibDoseModified": ModifyBosutinibDose,
    "InoInfusionRecorded": RecordInoInfusion,
    "ToxicityReported": ReportToxicity,
    "ToxicityResolved": ResolveToxicity,
    "ResponseAssessed": AssessResponse,
    "TreatmentEnded": EndTreatment,
    "FollowUpRecorded": RecordFollowUp,
    "LostToFollowUp": RecordLostToFollowUp,
    "DeathRecorded": RecordDeath,
}

#: what the scheduler records because time passed; recorded by the system only, never by users
ELAPSED_COMMANDS: tuple[type[PatientCommand], ...] = (RecordFollowUpMissed, CompleteFollowUp, CompleteDltEvaluation)


@dataclass(frozen=True, kw_only=True)
class UndatedCommand(Command):
    """A command about the ledger's users or records rather than a clinical fact: dated the day it is recorded."""

    date_field = ""

    @property
    def occurred_on(self) -> date:
        raise AttributeError(f"{self.name} has no clinical date; it is dated the day it is recorded")


@dataclass(frozen=True, kw_only=True)
class UserCommand(UndatedCommand):
    user_id: str


@dataclass(frozen=True, kw_only=True)
class RegisterUser(UserCommand):
    name = "register_user"
    printed_name: str
    user_role: Role


@dataclass(frozen=True, kw_only=True)
class ChangeUserRole(UserCommand):
    name = "change_user_role"
    user_role: Role


@dataclass(frozen=True, kw_only=True)
class DeactivateUser(UserCommand):
    name = "deactivate_user"


@dataclass(frozen=True, kw_only=True)
class ReactivateUser(UserCommand):
    name = "reactivate_user"


@dataclass(frozen=True, kw_only=True)
class IssueCredential(UserCommand):
    """A new credential for ``user_id``: its salted hash replaces the previous one; the event holds neither."""

    name = "issue_credential"
    secret_hash: str


@dataclass(frozen=True, kw_only=True)
class SignRecord(UndatedCommand):
    """An electronic signature: a patient's cycle or whole casebook, or a 3+3 decision (``stratum`` and ``decision_entry_id``)."""

    name = "sign_record"
    scope: SignatureScope
    meaning: SignatureMeaning
    patient_id: str | None = None
    cycle: int | None = None
    stratum: str | None = None
    decision_entry_id: str | None = None
    #: the signer's credential, entered again for this signature (11.200); checked, never recorded
    credential: str = field(default="", repr=False)


USER_COMMANDS: dict[str, type[UserCommand]] = {
    cls.name: cls for cls in (RegisterUser, ChangeUserRole, DeactivateUser, ReactivateUser, IssueCredential)
}
