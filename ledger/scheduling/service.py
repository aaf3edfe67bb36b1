"""The scheduler's work, without the scheduler: pending actions, and recording those due.

The recorded courses are the source of truth: what is pending is computed from them
(``ledger.policies.schedule``) whenever it is asked, so a restart, a catch-up after months of
downtime or a second scheduler finds exactly what is still to do. Each action is sent as an
ordinary command with a deterministic ``command_id``; the ledger records it once whoever sends
it, and checks it against the same rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from ledger.application import Outcome, TrialLedger
from ledger.domain.values import Actor, Role
from ledger.errors import LedgerError
from ledger.persistence import EntryRow
from ledger.policies import schedule
from ledger.policies.schedule import Action
from ledger.state import patient_state

#: who records what time makes due (``recorded_by`` = ``system:scheduler``)
SYSTEM_ACTOR = Actor("system:scheduler", Role.SYSTEM)
BATCH = 100  # actions a transaction

Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class RunReport:
    """What one run recorded: entry ids by command id; duplicates (already recorded); refusals."""

    due: int = 0
    recorded: dict[str, list[str]] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"due": self.due, "recorded": len(self.recorded), "duplicates": len(self.duplicates), "refused": self.refused,
                "command_ids": sorted(self.recorded)}


class Scheduling:
    def __init__(self, ledger: TrialLedger, actor: Actor = SYSTEM_ACTOR, source: str | None = None) -> None:
        self.ledger = ledger
        self.actor = actor
        self.source = source  # the ``source`` of what it records

    def patients(self) -> list[str]:
        """Every enrolled patient, in enrollment order."""
        with self.ledger.transaction(commit=False) as session:
            ids = session.execute(select(EntryRow.patient_id).where(EntryRow.kind == "PatientEnrolled").order_by(EntryRow.position)).scalars()
            return [pid for pid in ids if pid is not None]

    def pending(self, patient_ids: Iterable[str] | None = None) -> list[Action]:
        """What the patients' recorded courses still make due, past or future; overdue first."""
        actions: list[Action] = []
        for patient_id in self.patients() if patient_ids is None else patient_ids:
            patient = self.ledger.load_patient(patient_id)
            actions += schedule.pending(patient_state(patient_id, patient.entries, self.ledger.protocol), self.ledger.protocol)
        return sorted(actions, key=lambda a: (a.due_on, a.patient_id, a.kind, a.visit or 0))

    def due(self, patient_ids: Iterable[str] | None = None, today: date | None = None) -> list[Action]:
        """The pending actions due by ``today`` (default: the clock's; the day after each window's last day has come)."""
        today = today or self.ledger.clock.today()
        return [a for a in self.pending(patient_ids) if a.due_on <= today]

    def run_due(self, patient_ids: Iterable[str] | None = None, on_progress: Progress | None = None, today: date | None = None) -> RunReport:
        """Record every action due by ``today``, ``BATCH`` a transaction; each exactly once."""
        actions = self.due(patient_ids, today)
        report = RunReport(due=len(actions))
        for start in range(0, len(actions), BATCH):
            chunk = actions[start : start + BATCH]
            results = self.ledger.handle_batch([a.command(self.source) for a in chunk], self.actor, stop_at_refusal=False)
            for action, result in zip(chunk, results, strict=True):
                _note(report, action, result)
            if on_progress is not None:
                on_progress(start + len(chunk), len(actions))
        return report


def _note(report: RunReport, action: Action, result: Outcome | LedgerError) -> None:
    if isinstance(result, LedgerError):  # e.g. a contact recorded since, inside the window: nothing is due any more
        report.refused[action.command_id] = str(result)
    elif result.duplicate:
        report.duplicates.append(action.command_id)
    else:
        report.recorded[action.command_id] = result.entry_ids
