"""Build a phase I stratum in memory (no database) for unit tests of the 3+3 escalation.

``stratum = Stratum()`` then ``stratum.cohort(300, on="2016-01-04", dlts=1)`` enrols three
patients at 300 mg who start cycle 1 that day (the first ``dlts`` of them with a grade 3,
possibly related rash on day 8), ``stratum.decide(...)`` records an investigator's decision, and
``stratum.state(on)`` folds it as the ledger does on that date.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from ledger.domain.escalation import Escalation, EscalationDecided, PatientAssignedToDoseLevel
from ledger.domain.values import Decision, Role
from ledger.protocol import Protocol, load_protocol
from ledger.state import StratumState, stratum_state
from tests.builders import T0, Course, d

#: onset of a cohort's DLTs: day 8 of cycle 1, well inside the DLT window
DLT_ONSET_DAY = 8


class Stratum:
    """A stratum's escalation aggregate and its phase I patients, driven directly."""

    def __init__(self, name: str = "default", opened_on: str = "2016-01-04", protocol: Protocol | None = None) -> None:
        self.name = name
        self.protocol = protocol or load_protocol()
        self.clock = T0
        self.courses: dict[str, Course] = {}
        self.escalation = Escalation.open(**self._envelope(d(opened_on)), stratum=name, dose_levels_mg=list(self.protocol.dose_levels_mg))

    def enroll(self, dose_mg: int, on: str | date, start_cycle: bool = True) -> Course:
        """One patient assigned to ``dose_mg`` on ``on``, starting cycle 1 that day unless told not to."""
        patient_id = f"P{len(self.courses) + 1:03d}"
        day = d(on)
        course = Course.enrolled(patient_id, on=day.isoformat(), dose_level_mg=dose_mg, stratum=self.name)
        self.escalation.record(PatientAssignedToDoseLevel, **self._envelope(day), patient_id=patient_id, dose_mg=dose_mg, assigned_on=day)
        if start_cycle:
            course.cycle(1, day.isoformat())
        self.courses[patient_id] = course
        return course

    def cohort(self, dose_mg: int, on: str | date, dlts: int = 0, size: int | None = None) -> date:
        """``size`` (default: the cohort size) patients at ``dose_mg`` from ``on``, ``dlts`` of them
        with a DLT; returns the first day on which all their DLT windows have closed."""
        day = d(on)
        for n in range(size if size is not None else self.protocol.cohort_size):
            course = self.enroll(dose_mg, day)
            if n < dlts:
                course.toxicity((day + timedelta(days=DLT_ONSET_DAY - 1)).isoformat(), grade=3, attribution="POSSIBLE")
        return day + timedelta(days=self.protocol.dlt_window_days)

    def decide(self, on: str | date, decision: Decision, dose_mg: int, mtd_mg: int | None = None) -> None:
        day = d(on)
        self.escalation.record(
            EscalationDecided,
            **self._envelope(day),
            decided_on=day,
            dose_mg=dose_mg,
            decision=decision,
            mtd_mg=mtd_mg,
            basis=[],
            recommended=decision.value,
        )

    def state(self, on: str | date) -> StratumState:
        """The stratum as the ledger folds it on ``on`` (patients folded on the same date)."""
        day = d(on)
        patients = {pid: course.state(valid_on=day.isoformat()) for pid, course in self.courses.items()}
        return stratum_state(self.name, self.escalation.entries, patients, self.protocol, valid_on=day, on=day)

    def _envelope(self, on: date) -> dict[str, Any]:
        self.clock += timedelta(seconds=1)
        return {
            "entry_id": str(uuid.uuid4()),
            "occurred_on": on,
            "timestamp": self.clock,
            "recorded_by": "dr.jain",
            "role": Role.INVESTIGATOR,
            "reason": None,
            "source": None,
            "protocol_version": self.protocol.version,
            "command_id": None,
        }
