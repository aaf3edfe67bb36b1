"""Per-patient analysis records, gathered from the same bitemporal folds as ``patient show``.

``gather(ledger, as_of, valid_on)`` folds every patient enrolled by ``valid_on`` as known at
``as_of`` (``ledger.state.patient_state``) and reduces each course to the dated facts the
objectives need — first treatment, best response, first CR/CRi, CCyR, MRD negativity,
relapse or progression, death, last contact — each with the entry id it rests on, so every
figure of the report can be traced back to the entries behind it (docs/report.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from ledger.application import TrialLedger
from ledger.persistence import EntryRow
from ledger.protocol import Protocol
from ledger.state import PatientState, patient_state

#: the responses that count as complete remission for O2 and start duration of response (O3)
CR_CRI = ("CR", "CRi")


@dataclass(frozen=True)
class Dated:
    """A fact the report uses: its clinical date and the entry it was recorded by."""

    on: date
    entry_id: str


@dataclass(frozen=True)
class PatientRecord:
    """One patient's course reduced to what the objectives count, with the entries behind it."""

    state: PatientState
    treated: Dated | None  # the first bosutinib dose or InO infusion
    best_response: Dated | None  # the first assessment of the best overall response
    best_response_value: str | None
    first_cr: Dated | None  # the first CR or CRi
    ccyr: Dated | None  # the first complete cytogenetic response
    mrd_negative: Dated | None  # the first MRD-negative assessment
    relapse: Dated | None  # the first relapse or progression after the first CR/CRi
    death: Dated | None
    last_alive: Dated  # the latest fact of the course that shows the patient alive

    @property
    def patient_id(self) -> str:
        return self.state.patient_id

    @property
    def phase(self) -> str:
        return self.state.phase or ""

    @property
    def enrolled(self) -> Dated:
        state = self.state  # gather keeps enrolled patients only
        return Dated(state.enrolled_on or date.min, state.enrollment_entry_id or "")

    @property
    def mutated(self) -> bool:
        return bool(self.state.abl_mutations)

    def survival(self) -> tuple[int, bool, Dated]:
        """Overall survival (O4): days from enrollment to death, or censored at the last day known alive."""
        end = self.death or self.last_alive
        return (end.on - self.enrolled.on).days, self.death is not None, end

    def response_duration(self) -> tuple[int, bool, Dated] | None:
        """Duration of response (O3): first CR/CRi to relapse, progression or death, else censored at the last contact."""
        if self.first_cr is None:
            return None
        events = [d for d in (self.relapse, self.death) if d is not None]
        end = min(events, key=lambda d: d.on) if events else self.last_alive
        return (end.on - self.first_cr.on).days, bool(events), end


@dataclass(frozen=True)
class TrialData:
    as_of: datetime | None
    valid_on: date
    patients: list[PatientRecord]

    def treated(self, phase: str | None = None) -> list[PatientRecord]:
        return [p for p in self.patients if p.treated is not None and (phase is None or p.phase == phase)]


def gather(ledger: TrialLedger, as_of: datetime | None = None, valid_on: date | None = None) -> TrialData:
    """Every patient enrolled by ``valid_on`` as known at ``as_of``, in enrollment order."""
    on = valid_on or ledger.clock.today()
    records = []
    for patient_id in enrolled_ids(ledger, as_of):
        state = patient_state(patient_id, ledger.load_patient(patient_id, as_of).entries, ledger.protocol, as_of=as_of, valid_on=on)
        if state.enrolled:
            records.append(analysis_record(state, ledger.protocol))
    records.sort(key=lambda r: (r.enrolled.on, r.patient_id))
    return TrialData(as_of, on, records)


def enrolled_ids(ledger: TrialLedger, as_of: datetime | None) -> list[str]:
    """The study subject ids whose enrollment had been recorded by ``as_of`` (from the entry index)."""
    query = select(EntryRow.patient_id).where(EntryRow.kind == "PatientEnrolled").order_by(EntryRow.position)
    if as_of is not None:
        query = query.where(EntryRow.recorded_at <= as_of)
    with ledger.transaction(commit=False) as session:
        return list(dict.fromkeys(pid for pid in session.execute(query).scalars() if pid is not None))


def analysis_record(state: PatientState, protocol: Protocol) -> PatientRecord:
    """Reduce a folded course (``patient_state``) to the facts the objectives count."""
    assessments = sorted(state.assessments, key=lambda a: a.assessed_on)
    exposure = [Dated(day, entry_id) for day, _, entry_id in state.doses] + [Dated(i.given_on, i.entry_id) for i in state.infusions]
    rank = protocol.response_rank
    ranked = [a for a in assessments if a.response in rank]
    best = min(ranked, key=lambda a: (rank.index(a.response), a.assessed_on)) if ranked else None
    first_cr = _first(Dated(a.assessed_on, a.entry_id) for a in assessments if a.response in CR_CRI)
    death = Dated(state.died_on, state.death_entry_id) if state.died_on and state.death_entry_id else None
    if death is None:
        death = _first(Dated(c.contacted_on, c.entry_id) for c in state.contacts if c.vital_status == "DEAD")
    return PatientRecord(
        state=state,
        treated=_first(exposure),
        best_response=Dated(best.assessed_on, best.entry_id) if best else None,
        best_response_value=best.response if best else None,
        first_cr=first_cr,
        ccyr=_first(Dated(a.assessed_on, a.entry_id) for a in assessments if a.cytogenetic == "CCyR"),
        mrd_negative=_first(Dated(a.assessed_on, a.entry_id) for a in assessments if a.mrd == "NEGATIVE"),
        relapse=_relapse(state, first_cr.on) if first_cr else None,
        death=death,
        last_alive=_last_alive(state, exposure),
    )


def _relapse(state: PatientState, after: date) -> Dated | None:
    """The first relapse or progression after ``after``: a PD assessment, a follow-up contact in
    relapse, or an end of treatment for progression."""
    found = [Dated(a.assessed_on, a.entry_id) for a in state.assessments if a.response == "PD" and a.assessed_on > after]
    found += [Dated(c.contacted_on, c.entry_id) for c in state.contacts if c.disease_status == "RELAPSE" and c.contacted_on > after]
    if state.end_reason == "PROGRESSION" and state.treatment_ended_on and state.treatment_end_entry_id and state.treatment_ended_on > after:
        found.append(Dated(state.treatment_ended_on, state.treatment_end_entry_id))
    return _first(found)


def _last_alive(state: PatientState, exposure: list[Dated]) -> Dated:
    """The latest fact that shows the patient alive: enrollment, treatment, assessments, toxicity
    onsets, the end of treatment, follow-up contacts reporting the patient alive."""
    facts = [Dated(state.enrolled_on, state.enrollment_entry_id)] if state.enrolled_on and state.enrollment_entry_id else []
    facts += exposure
    facts += [Dated(c.started_on, c.entry_id) for c in state.cycles]
    facts += [Dated(a.assessed_on, a.entry_id) for a in state.assessments]
    facts += [Dated(t.onset_on, t.entry_id) for t in state.toxicities]
    facts += [Dated(c.contacted_on, c.entry_id) for c in state.contacts if c.vital_status == "ALIVE"]
    if state.treatment_ended_on and state.treatment_end_entry_id:
        facts.append(Dated(state.treatment_ended_on, state.treatment_end_entry_id))
    if state.died_on is not None:  # a fact dated on the day of death does not show the patient alive after it
        facts = [f for f in facts if f.on <= state.died_on]
    return max(facts, key=lambda f: f.on)


def _first(dated: Iterable[Dated]) -> Dated | None:
    items = list(dated)
    return min(items, key=lambda d: d.on) if items else None
