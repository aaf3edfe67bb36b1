"""The pure folds: what a patient's or a stratum's entries add up to, bitemporally.

``patient_state(entries, protocol, as_of, valid_on)`` keeps the entries recorded at or
before ``as_of`` (transaction time), applies corrections to the entries they amend and drops
voided ones, keeps what is dated on or before ``valid_on`` (valid time), and folds the rest
in clinical-date order. Rules, queries and reports all call these functions, so a rule never
sees a different state from the one users are shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from ledger.domain.escalation import EscalationDecided, PatientAssignedToDoseLevel
from ledger.domain.events import ProtocolDeviationRecorded
from ledger.domain.patient import FACT_EVENTS, EntryCorrected, EntryVoided
from ledger.domain.values import Entry
from ledger.policies.dlt import dlt_window, in_dlt_window, is_dose_limiting
from ledger.protocol import Protocol

AMENDMENTS = (EntryCorrected.__name__, EntryVoided.__name__)
DATE_FIELDS: dict[str, str] = {
    name: cls.date_field for name, cls in FACT_EVENTS.items() if cls.date_field is not None
}
DATE_FIELDS[EscalationDecided.__name__] = "decided_on"
DATE_FIELDS[PatientAssignedToDoseLevel.__name__] = "assigned_on"


def effective_entries(entries: list[Entry], as_of: datetime | None = None) -> list[Entry]:
    """The facts known at ``as_of``, each as last corrected, without voided ones.

    Corrections and voids themselves are not in the result: they act on their targets. A
    deviation whose fact was voided goes with it.
    """
    known = [e for e in entries if as_of is None or e.recorded_at <= as_of]
    current: dict[str, Entry] = {e.entry_id: e for e in known if e.kind not in AMENDMENTS}
    voided: set[str] = set()
    for amendment in (e for e in known if e.kind in AMENDMENTS):
        target_id = amendment.data["amends_entry_id"]
        if target_id not in current:
            continue
        if amendment.kind == EntryVoided.__name__:
            voided.add(target_id)
        else:
            current[target_id] = corrected(current[target_id], amendment.data["changes"])
    # a deviation goes with its fact when the fact is voided, also when it was recorded with a correction of it
    gone = voided | {e.entry_id for e in known if e.kind == EntryCorrected.__name__ and e.data["amends_entry_id"] in voided}
    return [
        e
        for e in current.values()
        if e.entry_id not in voided and not (e.kind == ProtocolDeviationRecorded.__name__ and e.data["deviating_entry_id"] in gone)
    ]


def corrected(entry: Entry, changes: dict[str, Any]) -> Entry:
    """The entry with the given fields changed; its valid time follows its date field."""
    data = {**entry.data, **changes}
    date_field = DATE_FIELDS.get(entry.kind)
    occurred_on = data[date_field] if date_field else entry.occurred_on
    return replace(entry, data=data, occurred_on=occurred_on)


def valid_entries(entries: list[Entry], valid_on: date | None) -> list[Entry]:
    """Entries dated on or before ``valid_on``, in clinical-date order (ties: recorded order)."""
    kept = [e for e in entries if valid_on is None or e.occurred_on <= valid_on]
    return sorted(kept, key=lambda e: (e.occurred_on, e.recorded_at, e.version))


@dataclass(frozen=True)
class Cycle:
    number: int
    started_on: date
    entry_id: str


@dataclass(frozen=True)
class Infusion:
    entry_id: str
    given_on: date
    dose_mg_m2: float


@dataclass(frozen=True)
class Toxicity:
    entry_id: str
    term: str
    grade: int
    attribution: str
    onset_on: date
    serious: bool
    hematologic: bool
    ctcae_version: str
    declared_dlt: bool | None
    dose_limiting: bool
    dlt: bool  # dose-limiting and in the DLT window: counts for escalation
    resolved_on: date | None


@dataclass(frozen=True)
class Assessment:
    entry_id: str
    assessed_on: date
    response: str
    cytogenetic: str | None
    mrd: str | None
    mrd_level: float | None
    qualifying: bool


@dataclass(frozen=True)
class Contact:
    entry_id: str
    contacted_on: date
    vital_status: str
    disease_status: str | None


@dataclass
class PatientState:
    """A patient's course on ``valid_on`` as known at ``as_of`` (``None``: everything)."""

    patient_id: str
    as_of: datetime | None
    valid_on: date | None
    enrolled: bool = False
    enrollment_entry_id: str | None = None
    phase: str | None = None
    stratum: str | None = None
    diagnosis: str | None = None
    enrolled_on: date | None = None
    dose_level_mg: int | None = None
    bsa_m2: float | None = None
    cycles: list[Cycle] = field(default_factory=list)
    modifications: list[tuple[date, int]] = field(default_factory=list)
    doses: list[tuple[date, int, str]] = field(default_factory=list)
    infusions: list[Infusion] = field(default_factory=list)
    toxicities: list[Toxicity] = field(default_factory=list)
    assessments: list[Assessment] = field(default_factory=list)
    treatment_ended_on: date | None = None
    end_reason: str | None = None
    contacts: list[Contact] = field(default_factory=list)
    died_on: date | None = None
    deviations: list[tuple[str, str]] = field(default_factory=list)
    entry_count: int = 0

    # --- date-aware questions the rules ask -------------------------------------------

    def cycle_on(self, day: date) -> Cycle | None:
        """The cycle running on ``day``: the last one started on or before it."""
        started = [c for c in self.cycles if c.started_on <= day]
        return max(started, key=lambda c: (c.started_on, c.number)) if started else None

    def cycle_numbered(self, number: int) -> Cycle | None:
        return next((c for c in self.cycles if c.number == number), None)

    @property
    def last_cycle(self) -> Cycle | None:
        return max(self.cycles, key=lambda c: (c.number, c.started_on)) if self.cycles else None

    def prescribed_dose_on(self, day: date) -> int | None:
        mods = [m for m in self.modifications if m[0] <= day]
        return mods[-1][1] if mods else self.dose_level_mg

    @property
    def first_response_on(self) -> date | None:
        """Date of the first qualifying response (CR, CRi, CCyR or MRD-negative)."""
        dates = [a.assessed_on for a in self.assessments if a.qualifying]
        return min(dates) if dates else None

    def day1_only(self, cycle: Cycle) -> bool:
        """INO-DAY1-ONLY: a cycle started after a qualifying response gets InO on day 1 only."""
        responded = self.first_response_on
        return responded is not None and cycle.started_on > responded

    def infusions_in(self, cycle: Cycle) -> list[Infusion]:
        end = self.cycle_end(cycle)
        return [i for i in self.infusions if cycle.started_on <= i.given_on and (end is None or i.given_on < end)]

    def cycle_end(self, cycle: Cycle) -> date | None:
        """The day the next started cycle begins (exclusive end of ``cycle``), if any."""
        later = [c.started_on for c in self.cycles if c.started_on > cycle.started_on]
        return min(later) if later else None

    @property
    def cycle1_started_on(self) -> date | None:
        first = self.cycle_numbered(1)
        return first.started_on if first else None

    @property
    def dlt(self) -> bool:
        return any(t.dlt for t in self.toxicities)

    def toxicity(self, entry_id: str) -> Toxicity | None:
        return next((t for t in self.toxicities if t.entry_id == entry_id), None)


def patient_state(
    patient_id: str,
    entries: list[Entry],
    protocol: Protocol,
    as_of: datetime | None = None,
    valid_on: date | None = None,
) -> PatientState:
    state = PatientState(patient_id=patient_id, as_of=as_of, valid_on=valid_on)
    known = [e for e in entries if as_of is None or e.recorded_at <= as_of]
    state.entry_count = sum(1 for e in known if valid_on is None or e.occurred_on <= valid_on)
    resolutions: dict[str, date] = {}
    for entry in valid_entries(effective_entries(entries, as_of), valid_on):
        if entry.kind == "ToxicityResolved":  # applied once every toxicity is known, whatever the dates
            resolutions[entry.data["toxicity_id"]] = entry.data["resolved_on"]
        else:
            _apply(state, entry, protocol)
    state.toxicities = [replace(t, resolved_on=resolutions.get(t.entry_id)) for t in state.toxicities]
    _derive_dlts(state, protocol)
    return state


def _apply(state: PatientState, entry: Entry, protocol: Protocol) -> None:  # noqa: C901 - one branch per fact
    d = entry.data
    kind = entry.kind
    if kind == "PatientEnrolled":
        state.enrolled = True
        state.enrollment_entry_id = entry.entry_id
        state.phase = _value(d["phase"])
        state.stratum = d["stratum"]
        state.diagnosis = _value(d["diagnosis"])
        state.enrolled_on = d["enrolled_on"]
        state.dose_level_mg = d["dose_level_mg"]
        state.bsa_m2 = d["bsa_m2"]
    elif kind == "CycleStarted":
        state.cycles.append(Cycle(d["cycle"], d["started_on"], entry.entry_id))
    elif kind == "BosutinibDoseRecorded":
        state.doses.append((d["taken_on"], d["dose_mg"], entry.entry_id))
    elif kind == "BosutinibDoseModified":
        state.modifications.append((d["effective_on"], d["dose_mg"]))
    elif kind == "InoInfusionRecorded":
        state.infusions.append(Infusion(entry.entry_id, d["given_on"], float(d["dose_mg_m2"])))
    elif kind == "ToxicityReported":
        state.toxicities.append(
            Toxicity(
                entry_id=entry.entry_id,
                term=d["term"],
                grade=d["grade"],
                attribution=_value(d["attribution"]),
                onset_on=d["onset_on"],
                serious=bool(d["serious"]),
                hematologic=bool(d["hematologic"]),
                ctcae_version=d["ctcae_version"],
                declared_dlt=d["dlt"],
                dose_limiting=False,
                dlt=False,
                resolved_on=None,
            )
        )
    elif kind == "ResponseAssessed":
        state.assessments.append(
            Assessment(
                entry_id=entry.entry_id,
                assessed_on=d["assessed_on"],
                response=_value(d["response"]),
                cytogenetic=_value(d["cytogenetic"]),
                mrd=_value(d["mrd"]),
                mrd_level=d["mrd_level"],
                qualifying=_qualifies(d, protocol),
            )
        )
    elif kind == "TreatmentEnded":
        state.treatment_ended_on = d["ended_on"]
        state.end_reason = _value(d["end_reason"])
    elif kind == "FollowUpRecorded":
        state.contacts.append(
            Contact(entry.entry_id, d["contacted_on"], _value(d["vital_status"]), _value(d["disease_status"]))
        )
    elif kind == "DeathRecorded":
        state.died_on = d["died_on"]
    elif kind == "ProtocolDeviationRecorded":
        state.deviations.append((d["rule_id"], entry.entry_id))


def _derive_dlts(state: PatientState, protocol: Protocol) -> None:
    start = state.cycle1_started_on
    derived = []
    for t in state.toxicities:
        limiting = is_dose_limiting(
            grade=t.grade,
            attribution=t.attribution,
            hematologic=t.hematologic,
            declared=t.declared_dlt,
            protocol=protocol,
        )
        derived.append(replace(t, dose_limiting=limiting, dlt=limiting and in_dlt_window(t.onset_on, start, protocol)))
    state.toxicities = derived


def _qualifies(d: dict[str, Any], protocol: Protocol) -> bool:
    return (
        _value(d["response"]) in protocol.qualifying_responses
        or _value(d["cytogenetic"]) in protocol.qualifying_cytogenetic
        or _value(d["mrd"]) in protocol.qualifying_mrd
    )


def _value(v: Any) -> Any:
    """The plain value of a vocabulary member (``Enum``) or the value itself."""
    return getattr(v, "value", v)


# --- escalation ---------------------------------------------------------------------------


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
