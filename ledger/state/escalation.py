"""The escalation fold: a stratum's assignments and decisions with its patients' DLT evaluations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from ledger.domain.escalation import EscalationDecided, PatientAssignedToDoseLevel
from ledger.domain.values import Entry
from ledger.policies.dlt import dlt_window
from ledger.protocol import Protocol
from ledger.state.entries import effective_entries, valid_entries
from ledger.state.entries import plain_value as _value
from ledger.state.patient import PatientState


@dataclass(frozen=True)
class DltEvaluation:
    """One phase I patient's DLT evaluation on a date."""

    patient_id: str
    dose_mg: int
    evaluable: bool
    pending: bool  # still within (or not yet in) the DLT window, no DLT yet
    replaced: bool  # left before the window ended without a DLT: not evaluable, replaced
    dlt: bool
    basis: tuple[str, ...]  # entry ids this evaluation rests on


def dlt_evaluation(state: PatientState, dose_mg: int, on: date, protocol: Protocol) -> DltEvaluation:
    """DLT-WINDOW evaluability of a patient on ``on`` (state must be folded with valid_on=on)."""
    basis = tuple(
        ([state.enrollment_entry_id] if state.enrollment_entry_id else [])
        + [c.entry_id for c in state.cycles if c.number == 1]
        + [t.entry_id for t in state.toxicities if t.dlt]
    )
    has_dlt = state.dlt
    start = state.cycle1_started_on
    left_on = min((d for d in (state.treatment_ended_on, state.died_on) if d is not None), default=None)
    if has_dlt:
        return DltEvaluation(state.patient_id, dose_mg, True, False, False, True, basis)
    if start is None:
        left = left_on is not None
        return DltEvaluation(state.patient_id, dose_mg, False, not left, left, False, basis)
    _, last = dlt_window(start, protocol)
    if left_on is not None and left_on < last:
        return DltEvaluation(state.patient_id, dose_mg, False, False, True, False, basis)
    passed = on > last
    return DltEvaluation(state.patient_id, dose_mg, passed, not passed, False, False, basis)


@dataclass(frozen=True)
class Level:
    dose_mg: int
    patients: int
    evaluable: int
    pending: int
    dlts: int
    cap: int
    decision: str | None


@dataclass(frozen=True)
class Decided:
    entry_id: str
    decided_on: date
    dose_mg: int
    decision: str
    mtd_mg: int | None


@dataclass
class StratumState:
    """The escalation of one stratum on ``valid_on`` as known at ``as_of``."""

    stratum: str
    as_of: datetime | None
    valid_on: date | None
    current_dose_mg: int
    status: str = "ESCALATING"
    mtd_mg: int | None = None
    too_toxic: set[int] = field(default_factory=set)
    caps: dict[int, int] = field(default_factory=dict)
    decisions: list[Decided] = field(default_factory=list)
    evaluations: list[DltEvaluation] = field(default_factory=list)
    levels: list[Level] = field(default_factory=list)

    def level(self, dose_mg: int) -> Level:
        return next(lv for lv in self.levels if lv.dose_mg == dose_mg)

    @property
    def basis(self) -> list[str]:
        return sorted({entry_id for ev in self.evaluations for entry_id in ev.basis})


def stratum_state(
    stratum: str,
    escalation_entries: list[Entry],
    patients: dict[str, PatientState],
    protocol: Protocol,
    as_of: datetime | None = None,
    valid_on: date | None = None,
    on: date | None = None,
) -> StratumState:
    """Fold a stratum's assignments and decisions; ``patients`` must be folded alike.

    ``on`` is the date whose DLT windows count as passed (default ``valid_on`` or today).
    """
    levels = protocol.dose_levels_mg
    state = StratumState(stratum, as_of, valid_on, current_dose_mg=levels[0])
    state.caps = {lv: protocol.cohort_size for lv in levels}
    assigned: dict[str, int] = {}
    for entry in valid_entries(effective_entries(escalation_entries, as_of), valid_on):
        d = entry.data
        if entry.kind == PatientAssignedToDoseLevel.__name__:
            assigned[d["patient_id"]] = d["dose_mg"]
        elif entry.kind == EscalationDecided.__name__:
            decided = Decided(entry.entry_id, d["decided_on"], d["dose_mg"], _value(d["decision"]), d["mtd_mg"])
            state.decisions.append(decided)
            _apply_decision(state, decided, protocol)
    day = on or valid_on or date.today()
    state.evaluations = [
        dlt_evaluation(patients[pid], dose, day, protocol) for pid, dose in assigned.items() if pid in patients
    ]
    last_decision = {d.dose_mg: d.decision for d in state.decisions}
    for lv in levels:
        evs = [e for e in state.evaluations if e.dose_mg == lv]
        state.levels.append(
            Level(
                dose_mg=lv,
                patients=len(evs),
                evaluable=sum(e.evaluable for e in evs),
                pending=sum(e.pending for e in evs),
                dlts=sum(e.dlt for e in evs),
                cap=state.caps[lv],
                decision=last_decision.get(lv),
            )
        )
    return state


def _apply_decision(state: StratumState, decided: Decided, protocol: Protocol) -> None:
    levels = protocol.dose_levels_mg
    i = levels.index(decided.dose_mg) if decided.dose_mg in levels else levels.index(state.current_dose_mg)
    if decided.decision == "ESCALATE" and i + 1 < len(levels):
        state.current_dose_mg = levels[i + 1]
    elif decided.decision == "EXPAND":
        state.caps[levels[i]] = protocol.expanded_cohort_size
    elif decided.decision == "DE_ESCALATE" and i > 0:
        state.too_toxic.add(levels[i])
        state.current_dose_mg = levels[i - 1]
        state.caps[levels[i - 1]] = protocol.expanded_cohort_size
    elif decided.decision in ("MTD_DECLARED", "MAX_DOSE_REACHED"):
        if decided.mtd_mg is not None and decided.mtd_mg < levels[i]:
            state.too_toxic.add(levels[i])
        state.status = decided.decision
        state.mtd_mg = decided.mtd_mg
        if decided.mtd_mg is not None:
            state.current_dose_mg = decided.mtd_mg  # phase II goes on at the MTD
    elif decided.decision == "STOP":
        state.too_toxic.add(levels[i])
        state.status = "STOPPED"
