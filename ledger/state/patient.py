"""The patient fold: what a patient's entries add up to on ``valid_on`` as known at ``as_of``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ledger.domain.values import Entry
from ledger.policies.dlt import in_dlt_window, is_dose_limiting
from ledger.protocol import Protocol
from ledger.state.entries import effective_entries, valid_entries
from ledger.state.entries import plain_value as _value


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


@dataclass(frozen=True)
class MissedVisit:
    entry_id: str
    visit: int
    due_on: date
    window_closed_on: date


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
    cd22_percent: float | None = None
    abl_mutations: tuple[str, ...] = ()
    birth_year: int | None = None
    sex: str | None = None
    site: str | None = None
    cycles: list[Cycle] = field(default_factory=list)
    modifications: list[tuple[date, int]] = field(default_factory=list)
    doses: list[tuple[date, int, str]] = field(default_factory=list)
    infusions: list[Infusion] = field(default_factory=list)
    toxicities: list[Toxicity] = field(default_factory=list)
    assessments: list[Assessment] = field(default_factory=list)
    treatment_ended_on: date | None = None
    end_reason: str | None = None
    treatment_end_entry_id: str | None = None
    contacts: list[Contact] = field(default_factory=list)
    died_on: date | None = None
    death_cause: str | None = None
    death_entry_id: str | None = None
    lost_on: date | None = None
    lost_entry_id: str | None = None
    missed_visits: list[MissedVisit] = field(default_factory=list)  # recorded by the scheduler
    follow_up_completed_on: date | None = None  # recorded by the scheduler
    dlt_evaluated_on: date | None = None  # the DLT window's last day, recorded by the scheduler
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


def best_response(state: PatientState, rank: tuple[str, ...]) -> str | None:
    """The best overall response assessed, by the protocol's order (best first)."""
    responses = [a.response for a in state.assessments if a.response in rank]
    return min(responses, key=rank.index) if responses else None


def patient_state(
    patient_id: str,
    entries: list[Entry],
    protocol: Protocol,
    as_of: datetime | None = None,
    valid_on: date | None = None,
) -> PatientState:
    state = PatientState(patient_id=patient_id, as_of=as_of, valid_on=valid_on)
    known = entries if as_of is None else [e for e in entries if e.recorded_at <= as_of]
    state.entry_count = len(known) if valid_on is None else sum(1 for e in known if e.occurred_on <= valid_on)
    resolutions: dict[str, date] = {}
    reported: list[Entry] = []
    for entry in valid_entries(effective_entries(known), valid_on):
        kind = entry.kind
        if kind == "ToxicityResolved":  # applied once every toxicity is known, whatever the dates
            resolutions[entry.data["toxicity_id"]] = entry.data["resolved_on"]
        elif kind == "ToxicityReported":  # built once the first cycle and the resolutions are known
            reported.append(entry)
        else:
            _apply(state, entry, protocol)
    start = state.cycle1_started_on
    state.toxicities = [_toxicity(entry, resolutions.get(entry.entry_id), start, protocol) for entry in reported]
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
        state.cd22_percent = d["cd22_percent"]
        state.abl_mutations = tuple(d["abl_mutations"])
        state.birth_year, state.sex, state.site = d["birth_year"], d["sex"], d["site"]
    elif kind == "CycleStarted":
        state.cycles.append(Cycle(d["cycle"], d["started_on"], entry.entry_id))
    elif kind == "BosutinibDoseRecorded":
        state.doses.append((d["taken_on"], d["dose_mg"], entry.entry_id))
    elif kind == "BosutinibDoseModified":
        state.modifications.append((d["effective_on"], d["dose_mg"]))
    elif kind == "InoInfusionRecorded":
        state.infusions.append(Infusion(entry.entry_id, d["given_on"], float(d["dose_mg_m2"])))
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
        state.treatment_end_entry_id = entry.entry_id
    elif kind == "FollowUpRecorded":
        state.contacts.append(
            Contact(entry.entry_id, d["contacted_on"], _value(d["vital_status"]), _value(d["disease_status"]))
        )
    elif kind == "DeathRecorded":
        state.died_on = d["died_on"]
        state.death_cause = d["cause"]
        state.death_entry_id = entry.entry_id
    elif kind == "LostToFollowUp":
        state.lost_on = d["lost_on"]
        state.lost_entry_id = entry.entry_id
    elif kind == "FollowUpMissed":
        state.missed_visits.append(MissedVisit(entry.entry_id, d["visit"], d["due_on"], d["window_closed_on"]))
    elif kind == "FollowUpCompleted":
        state.follow_up_completed_on = d["completed_on"]
    elif kind == "DltEvaluationCompleted":
        state.dlt_evaluated_on = d["window_closed_on"]
    elif kind == "ProtocolDeviationRecorded":
        state.deviations.append((d["rule_id"], entry.entry_id))


def _toxicity(entry: Entry, resolved_on: date | None, cycle1_started_on: date | None, protocol: Protocol) -> Toxicity:
    """A reported toxicity with what derives from it: dose-limiting (DLT-DEF), counted (DLT-WINDOW)."""
    d = entry.data
    attribution = _value(d["attribution"])
    limiting = is_dose_limiting(grade=d["grade"], attribution=attribution, hematologic=bool(d["hematologic"]), declared=d["dlt"], protocol=protocol)
    return Toxicity(
        entry_id=entry.entry_id,
        term=d["term"],
        grade=d["grade"],
        attribution=attribution,
        onset_on=d["onset_on"],
        serious=bool(d["serious"]),
        hematologic=bool(d["hematologic"]),
        ctcae_version=d["ctcae_version"],
        declared_dlt=d["dlt"],
        dose_limiting=limiting,
        dlt=limiting and in_dlt_window(d["onset_on"], cycle1_started_on, protocol),
        resolved_on=resolved_on,
    )


def _qualifies(d: dict[str, Any], protocol: Protocol) -> bool:
    return (
        _value(d["response"]) in protocol.qualifying_responses
        or _value(d["cytogenetic"]) in protocol.qualifying_cytogenetic
        or _value(d["mrd"]) in protocol.qualifying_mrd
    )
