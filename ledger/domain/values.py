"""Value types of the trial: vocabularies, deterministic ids and the entry envelope.

Vocabularies are plain ``Enum`` classes (not ``str`` subclasses) so that the event store
round-trips them through a registered transcoding and a stored event decodes to exactly
the type it was recorded with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

NAMESPACE = uuid5(NAMESPACE_URL, "https://clinicaltrials.gov/study/NCT02311998/ledger")


class Phase(Enum):
    I = "I"  # noqa: E741 - the protocol's own name for phase I
    II = "II"


class Response(Enum):
    CR = "CR"
    CRi = "CRi"
    CRp = "CRp"
    MLFS = "MLFS"
    PR = "PR"
    NR = "NR"
    PD = "PD"


class Cytogenetic(Enum):
    CCyR = "CCyR"
    PCyR = "PCyR"
    NONE = "NONE"
    NOT_DONE = "NOT_DONE"


class Mrd(Enum):
    NEGATIVE = "NEGATIVE"
    POSITIVE = "POSITIVE"
    NOT_DONE = "NOT_DONE"


class Attribution(Enum):
    UNRELATED = "UNRELATED"
    UNLIKELY = "UNLIKELY"
    POSSIBLE = "POSSIBLE"
    PROBABLE = "PROBABLE"
    DEFINITE = "DEFINITE"


class EndReason(Enum):
    COMPLETED = "COMPLETED"
    PROGRESSION = "PROGRESSION"
    TOXICITY = "TOXICITY"
    TRANSPLANT = "TRANSPLANT"
    WITHDRAWAL = "WITHDRAWAL"
    DEATH = "DEATH"
    NO_RESPONSE = "NO_RESPONSE"
    INVESTIGATOR = "INVESTIGATOR"


class VitalStatus(Enum):
    ALIVE = "ALIVE"
    DEAD = "DEAD"


class DiseaseStatus(Enum):
    REMISSION = "REMISSION"
    RELAPSE = "RELAPSE"
    UNKNOWN = "UNKNOWN"


class Decision(Enum):
    ESCALATE = "ESCALATE"
    EXPAND = "EXPAND"
    DE_ESCALATE = "DE_ESCALATE"
    MTD_DECLARED = "MTD_DECLARED"
    MAX_DOSE_REACHED = "MAX_DOSE_REACHED"
    STOP = "STOP"


class Role(Enum):
    COORDINATOR = "coordinator"
    INVESTIGATOR = "investigator"
    MONITOR = "monitor"
    AUDITOR = "auditor"
    SPONSOR = "sponsor"
    SUBSCRIBER = "subscriber"
    ADMIN = "admin"
    SYSTEM = "system"


class SignatureScope(Enum):
    """What an electronic signature covers (docs/signatures.md)."""

    CYCLE = "CYCLE"
    CASEBOOK = "CASEBOOK"
    ESCALATION_DECISION = "ESCALATION_DECISION"


class SignatureMeaning(Enum):
    """The meaning of a signature (21 CFR 11.50(a)(3))."""

    REVIEWED = "reviewed"
    APPROVED = "approved"
    RESPONSIBLE = "responsible"


ENUMS: tuple[type[Enum], ...] = (
    Phase,
    Response,
    Cytogenetic,
    Mrd,
    Attribution,
    EndReason,
    VitalStatus,
    DiseaseStatus,
    Decision,
    Role,
    SignatureScope,
    SignatureMeaning,
)


def patient_aggregate_id(patient_id: str) -> UUID:
    """The event-store id of a patient's course: the store then keeps subject ids unique."""
    return uuid5(NAMESPACE, f"patient:{patient_id}")


def user_aggregate_id(user_id: str) -> UUID:
    """The event-store id of a user's account: the store then keeps user ids unique."""
    return uuid5(NAMESPACE, f"user:{user_id}")


def escalation_aggregate_id(stratum: str) -> UUID:
    """The event-store id of the phase I escalation of one stratum."""
    return uuid5(NAMESPACE, f"escalation:{stratum}")


@dataclass(frozen=True)
class Actor:
    """Who records an entry: a person or a system, with the role they act in."""

    user: str
    role: Role


@dataclass(frozen=True)
class Entry:
    """One recorded fact as the state folds see it: the envelope plus the fact's own fields.

    ``data`` holds the fields of the event that recorded it (dates as ``date``, vocabularies
    as their ``Enum``); ``kind`` is the event's class name (``CycleStarted``, ...).
    """

    entry_id: str
    kind: str
    version: int
    occurred_on: date
    recorded_at: datetime
    recorded_by: str
    role: str
    reason: str | None
    source: str | None
    protocol_version: str
    command_id: str | None
    data: dict[str, Any]
