"""Build a patient's course in memory (no database) for unit tests of rules and folds.

``course = Course.enrolled("P001", on="2016-02-01")`` then ``course.cycle(1, "2016-02-02")``,
``course.dose("2016-02-02", 300)``, ... and ``course.state()`` folds it like the ledger does.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ledger.domain import patient as ev
from ledger.domain.events import LedgerEvent
from ledger.domain.patient import Patient
from ledger.domain.values import Attribution, Cytogenetic, EndReason, Mrd, Phase, Response, Role, VitalStatus
from ledger.protocol import Protocol, load_protocol
from ledger.state import PatientState, patient_state

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def d(text: str | date) -> date:
    return text if isinstance(text, date) else date.fromisoformat(text)


class Course:
    """A patient aggregate driven directly, with a clock that ticks one second per entry."""

    def __init__(self, patient: Patient, protocol: Protocol, clock: datetime) -> None:
        self.patient = patient
        self.protocol = protocol
        self.clock = clock

    @classmethod
    def enrolled(cls, patient_id: str = "P001", on: str = "2016-02-01", phase: str = "I", dose_level_mg: int = 300, **fields: Any) -> Course:
        protocol = load_protocol()
        data = {
            "patient_id": patient_id,
            "enrolled_on": d(on),
            "diagnosis": "PH_POS_ALL",
            "phase": Phase(phase),
            "stratum": "default",
            "cd22_percent": 60.0,
            "abl_mutations": [],
            "bsa_m2": 1.8,
            "dose_level_mg": dose_level_mg,
            "birth_year": None,
            "sex": None,
            "site": None,
            **fields,
        }
        patient = Patient.enroll(**_envelope(d(on), T0), **data)
        return cls(patient, protocol, T0)

    def add(self, event_class: type[LedgerEvent], on: str | date, **data: Any) -> str:
        self.clock += timedelta(seconds=1)
        envelope = _envelope(d(on), self.clock)
        self.patient.record(event_class, **envelope, **data)
        return str(envelope["entry_id"])

    def cycle(self, number: int, on: str) -> str:
        return self.add(ev.CycleStarted, on, cycle=number, started_on=d(on))

    def dose(self, on: str, mg: int = 300) -> str:
        return self.add(ev.BosutinibDoseRecorded, on, taken_on=d(on), dose_mg=mg)

    def modify(self, on: str, mg: int) -> str:
        return self.add(ev.BosutinibDoseModified, on, effective_on=d(on), dose_mg=mg)

    def ino(self, on: str, mg_m2: float) -> str:
        return self.add(ev.InoInfusionRecorded, on, given_on=d(on), dose_mg_m2=mg_m2, started_at=None, ended_at=None)

    def toxicity(self, on: str, term: str = "Rash", grade: int = 3, attribution: str = "POSSIBLE", hematologic: bool = False, dlt: bool | None = None) -> str:
        return self.add(
            ev.ToxicityReported, on, onset_on=d(on), term=term, grade=grade, attribution=Attribution(attribution),
            serious=False, hematologic=hematologic, ctcae_version="5.0", dlt=dlt,
        )

    def response(self, on: str, response: str = "CR", cytogenetic: str | None = None, mrd: str | None = None) -> str:
        return self.add(
            ev.ResponseAssessed, on, assessed_on=d(on), response=Response(response),
            cytogenetic=Cytogenetic(cytogenetic) if cytogenetic else None, mrd=Mrd(mrd) if mrd else None, mrd_level=None,
        )

    def end(self, on: str, reason: str = "COMPLETED") -> str:
        return self.add(ev.TreatmentEnded, on, ended_on=d(on), end_reason=EndReason(reason))

    def follow_up(self, on: str) -> str:
        return self.add(ev.FollowUpRecorded, on, contacted_on=d(on), vital_status=VitalStatus.ALIVE, disease_status=None)

    def death(self, on: str) -> str:
        return self.add(ev.DeathRecorded, on, died_on=d(on), cause=None)

    def correct(self, entry_id: str, on: str, **changes: Any) -> str:
        target = self.patient.entry(entry_id)
        assert target is not None
        old = {k: target.data.get(k) for k in changes}
        return self.add(ev.EntryCorrected, on, amends_entry_id=entry_id, changes=changes, old_values=old)

    def void(self, entry_id: str, on: str) -> str:
        return self.add(ev.EntryVoided, on, amends_entry_id=entry_id)

    def state(self, as_of: datetime | None = None, valid_on: str | None = None) -> PatientState:
        return patient_state(self.patient.patient_id, self.patient.entries, self.protocol, as_of=as_of, valid_on=d(valid_on) if valid_on else None)


def _envelope(on: date, at: datetime) -> dict[str, Any]:
    return {
        "entry_id": str(uuid.uuid4()),
        "occurred_on": on,
        "timestamp": at,
        "recorded_by": "tester",
        "role": Role.INVESTIGATOR,
        "reason": None,
        "source": None,
        "protocol_version": "1.0",
        "command_id": None,
    }
