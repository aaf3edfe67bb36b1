"""The demo's value types and how one synthetic patient's ``Course`` becomes dated steps.

A ``Course`` is a few numbers a reader can check against the protocol: enrollment, the number of
cycles, the toxicities, responses, held doses, a reduction, a moved infusion and how treatment
ended. ``course_steps`` turns it into the dated commands of that patient, in the order they
happen; a ``Timeline`` collects the steps of every patient and sorts them by clinical date.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from ledger.commands import (
    AssessResponse,
    Command,
    CorrectEntry,
    EndTreatment,
    EnrollPatient,
    ModifyBosutinibDose,
    RecordBosutinibDose,
    RecordDeath,
    RecordFollowUp,
    RecordInoInfusion,
    ReportToxicity,
    ResolveToxicity,
    StartCycle,
)
from ledger.domain.values import (
    Actor,
    Attribution,
    Cytogenetic,
    DiseaseStatus,
    EndReason,
    Mrd,
    Phase,
    Response,
    Role,
    VitalStatus,
)
from ledger.protocol import Protocol

STRATUM = "default"
RESPONDER = "D201"
COORDINATOR = Actor("demo.coordinator", Role.COORDINATOR)
INVESTIGATOR = Actor("demo.investigator", Role.INVESTIGATOR)


@dataclass(frozen=True)
class Tox:
    """A toxicity on day ``day`` of cycle ``cycle``; optionally resolved or corrected later."""

    cycle: int
    day: int
    term: str
    grade: int
    attribution: Attribution
    hematologic: bool = False
    serious: bool = False
    resolved_after_days: int | None = None
    corrected_grade: int | None = None
    correction_reason: str | None = None


@dataclass(frozen=True)
class Assessed:
    cycle: int
    day: int
    response: Response
    cytogenetic: Cytogenetic | None = None
    mrd: Mrd | None = None
    mrd_level: float | None = None


@dataclass(frozen=True)
class Held:
    """Bosutinib held on days ``first``..``last`` of ``cycle`` (missed doses are not made up)."""

    cycle: int
    first: int
    last: int


@dataclass(frozen=True)
class Reduction:
    cycle: int
    day: int
    dose_mg: int
    reason: str


@dataclass(frozen=True)
class MovedInfusion:
    """The InO infusion of scheduled ``day`` of ``cycle`` given on ``given_day``: a deviation."""

    cycle: int
    day: int
    given_day: int
    reason: str


@dataclass(frozen=True)
class Course:
    """One synthetic patient's course: enrollment, ``cycles`` cycles, and what happened."""

    patient_id: str
    phase: Phase
    enrolled_on: date
    dose_mg: int
    cycles: int
    birth_year: int
    sex: str
    diagnosis: str = "PH_POS_ALL"
    cd22_percent: float = 70.0
    abl_mutations: tuple[str, ...] = ()
    bsa_m2: float = 1.8
    days_to_cycle_1: int = 2
    toxicities: tuple[Tox, ...] = ()
    assessments: tuple[Assessed, ...] = ()
    held: tuple[Held, ...] = ()
    reduction: Reduction | None = None
    moved_infusion: MovedInfusion | None = None
    end_reason: EndReason | None = None
    follow_up_days: tuple[int, ...] = (84, 168, 252, 336)
    disease_status: DiseaseStatus = DiseaseStatus.REMISSION
    died_days_after_end: int | None = None
    cause_of_death: str | None = None
    try_extra_cycle: bool = False

    @property
    def cycle_1_on(self) -> date:
        return self.enrolled_on + timedelta(days=self.days_to_cycle_1)


#: a command, or a function of the entry ids recorded so far that builds one
Build = Command | Callable[[Mapping[str, str]], Command]


@dataclass(frozen=True)
class Step:
    on: date
    actor: Actor
    build: Build
    say: str | None = None  # narration printed once recorded
    label: str | None = None  # remember the first entry id under this name
    refusal: str | None = None  # the rule id this step is expected to be refused by


@dataclass
class Timeline:
    """Steps in the order they were planned; ``ordered`` sorts them by clinical date."""

    steps: list[tuple[date, int, Step]] = field(default_factory=list)

    def add(self, step: Step) -> None:
        self.steps.append((step.on, len(self.steps), step))

    def extend(self, steps: list[Step]) -> None:
        for step in steps:
            self.add(step)

    def ordered(self) -> list[Step]:
        return [s for _, _, s in sorted(self.steps, key=lambda t: (t[0], t[1]))]


# --- a course, as dated steps -------------------------------------------------------------


def course_steps(c: Course, protocol: Protocol) -> list[Step]:
    """The dated commands of one course, each patient's own steps in the order they happen."""
    pid = c.patient_id

    def on(cycle: int, day: int) -> date:
        return c.cycle_1_on + timedelta(days=(cycle - 1) * protocol.cycle_days + day - 1)

    enroll = EnrollPatient(
        patient_id=pid, enrolled_on=c.enrolled_on, diagnosis=c.diagnosis, phase=c.phase, cd22_percent=c.cd22_percent,
        abl_mutations=list(c.abl_mutations), bsa_m2=c.bsa_m2, stratum=STRATUM, birth_year=c.birth_year, sex=c.sex, site="DEMO",
    )
    say = f"{pid} enrolled: phase {c.phase.value}, {c.diagnosis}, bosutinib {c.dose_mg} mg"
    steps = [Step(c.enrolled_on, COORDINATOR, enroll, say=say)]
    responded = min((on(a.cycle, a.day) for a in c.assessments if _qualifies(a, protocol)), default=None)
    for n in range(1, c.cycles + 1):
        steps += _cycle_steps(c, n, on, responded, protocol)
    if c.reduction is not None:
        reduced_on = on(c.reduction.cycle, c.reduction.day)
        modify = ModifyBosutinibDose(patient_id=pid, effective_on=reduced_on, dose_mg=c.reduction.dose_mg, reason=c.reduction.reason)
        say = f"{pid} bosutinib reduced to {c.reduction.dose_mg} mg: {c.reduction.reason}"
        # recorded before the first dose at the new level
        steps.insert(_first_index_on(steps, reduced_on), Step(reduced_on, INVESTIGATOR, modify, say=say))
    for i, t in enumerate(c.toxicities):
        steps += _toxicity_steps(pid, i, t, on(t.cycle, t.day), protocol)
    for a in c.assessments:
        assessed = on(a.cycle, a.day)
        assess = AssessResponse(
            patient_id=pid, assessed_on=assessed, response=a.response, cytogenetic=a.cytogenetic, mrd=a.mrd, mrd_level=a.mrd_level
        )
        details = ", ".join(v.value for v in (a.response, a.cytogenetic) if v is not None) + (f", MRD {a.mrd.value}" if a.mrd else "")
        steps.append(Step(assessed, INVESTIGATOR, assess, say=f"{pid} response on cycle {a.cycle} day {a.day}: {details}"))
    if c.end_reason is not None:
        steps += _end_steps(c, c.end_reason, on(c.cycles, 1) + timedelta(days=protocol.cycle_days))
    return steps


def _cycle_steps(c: Course, n: int, on: Callable[[int, int], date], responded: date | None, protocol: Protocol) -> list[Step]:
    """Cycle ``n``: its start, the InO infusions its schedule asks for, a bosutinib dose a day."""
    pid = c.patient_id
    start = on(n, 1)
    day1_only = responded is not None and start > responded  # INO-DAY1-ONLY
    first_day1_only = day1_only and not (n > 1 and responded is not None and on(n - 1, 1) > responded)
    say = f"{pid} cycle {n} starts after the response of {responded}: InO on day 1 only from now on" if first_day1_only else None
    steps = [Step(start, COORDINATOR, StartCycle(patient_id=pid, cycle=n, started_on=start), say=say)]
    day_1 = protocol.ino_days[0]
    for scheduled in protocol.ino_days:
        if day1_only and scheduled != day_1:
            continue
        dose = _ino_dose(scheduled, day1_only, protocol)
        moved = c.moved_infusion
        if moved is not None and (moved.cycle, moved.day) == (n, scheduled):
            given = on(n, moved.given_day)
            infusion = RecordInoInfusion(patient_id=pid, given_on=given, dose_mg_m2=dose, deviation=True, reason=moved.reason)
            say = f"{pid} InO {dose:g} mg/m2 on cycle {n} day {moved.given_day}: {moved.reason}"
            steps.append(Step(given, INVESTIGATOR, infusion, say=say))
        else:
            given = on(n, scheduled)
            steps.append(Step(given, COORDINATOR, RecordInoInfusion(patient_id=pid, given_on=given, dose_mg_m2=dose)))
    held = {(h.cycle, day) for h in c.held for day in range(h.first, h.last + 1)}
    reduced_on = on(c.reduction.cycle, c.reduction.day) if c.reduction else None
    for day in range(1, protocol.bosutinib_days + 1):
        if (n, day) in held:
            continue  # missed doses are not made up
        taken = on(n, day)
        dose_mg = c.reduction.dose_mg if c.reduction and reduced_on and taken >= reduced_on else c.dose_mg
        steps.append(Step(taken, COORDINATOR, RecordBosutinibDose(patient_id=pid, taken_on=taken, dose_mg=dose_mg)))
    return steps


def _toxicity_steps(pid: str, i: int, t: Tox, onset: date, protocol: Protocol) -> list[Step]:
    """The report; its correction a week later (the entry id is known by then); its resolution."""
    label = f"{pid}:toxicity:{i}"
    report = ReportToxicity(
        patient_id=pid, onset_on=onset, term=t.term, grade=t.grade, attribution=t.attribution, serious=t.serious,
        hematologic=t.hematologic,
    )
    limiting = t.grade >= protocol.dlt_min_grade and t.attribution.value in protocol.dlt_attributions and not t.hematologic
    # the common toxicities (nausea, cytopenias: not dose-limiting by definition) go unnarrated
    say = f"{pid} {t.term}, grade {t.grade}, {t.attribution.value.lower()} -- dose-limiting" if limiting else None
    steps = [Step(onset, COORDINATOR, report, say=say, label=label)]
    if t.corrected_grade is not None:
        grade, reason = t.corrected_grade, t.correction_reason

        def correct(ids: Mapping[str, str]) -> Command:
            return CorrectEntry(patient_id=pid, entry_id=ids[label], changes={"grade": grade}, reason=reason)

        say = f"{pid} {t.term} corrected from grade {t.grade} to {grade}: {reason}"
        steps.append(Step(onset + timedelta(days=7), INVESTIGATOR, correct, say=say))
    if t.resolved_after_days is not None:
        resolved = onset + timedelta(days=t.resolved_after_days)

        def resolve(ids: Mapping[str, str]) -> Command:
            return ResolveToxicity(patient_id=pid, toxicity_id=ids[label], resolved_on=resolved)

        steps.append(Step(resolved, COORDINATOR, resolve))
    return steps


def _end_steps(c: Course, reason: EndReason, ended: date) -> list[Step]:
    """End of treatment on ``ended`` (the day after the last cycle), then the follow-up year."""
    pid = c.patient_id
    steps = []
    if c.try_extra_cycle:
        extra = c.cycles + 1
        attempt = StartCycle(patient_id=pid, cycle=extra, started_on=ended)
        say = f"{pid} completed {c.cycles} cycles; the site tries to start cycle {extra}"
        steps.append(Step(ended, COORDINATOR, attempt, say=say, refusal="CYCLE-CAP"))
    end = EndTreatment(patient_id=pid, ended_on=ended, end_reason=reason)
    steps.append(Step(ended, INVESTIGATOR, end, say=f"{pid} end of treatment after {c.cycles} cycle(s): {reason.value}"))
    if reason is EndReason.WITHDRAWAL:
        return steps  # consent withdrawn: no follow-up
    for k, days in enumerate(c.follow_up_days):
        contacted = ended + timedelta(days=days + (k % 3) - 1)  # a day or so either side of the due date
        contact = RecordFollowUp(patient_id=pid, contacted_on=contacted, vital_status=VitalStatus.ALIVE, disease_status=c.disease_status)
        say = f"{pid} follow-up contact on day {(contacted - ended).days} after end of treatment: alive, {c.disease_status.value.lower()}"
        steps.append(Step(contacted, COORDINATOR, contact, say=say if pid == RESPONDER else None))
    if c.died_days_after_end is not None:
        died = ended + timedelta(days=c.died_days_after_end)
        death = RecordDeath(patient_id=pid, died_on=died, cause=c.cause_of_death)
        steps.append(Step(died, INVESTIGATOR, death, say=f"{pid} died: {c.cause_of_death}"))
    return steps


def _ino_dose(scheduled: int, day1_only: bool, protocol: Protocol) -> float:
    """INO-DOSE: 1.0 mg/m2 in a day-1-only cycle, else 0.8 on day 1 and 0.5 on days 8 and 15."""
    if day1_only:
        return protocol.responder_ino_mg_m2
    return protocol.ino_day1_mg_m2 if scheduled == protocol.ino_days[0] else protocol.ino_later_days_mg_m2


def _first_index_on(steps: list[Step], day: date) -> int:
    return next((i for i, s in enumerate(steps) if s.on >= day), len(steps))


def _qualifies(a: Assessed, protocol: Protocol) -> bool:
    """INO-DAY1-ONLY's qualifying response, as the protocol definition lists them."""
    return (
        a.response.value in protocol.qualifying_responses
        or (a.cytogenetic is not None and a.cytogenetic.value in protocol.qualifying_cytogenetic)
        or (a.mrd is not None and a.mrd.value in protocol.qualifying_mrd)
    )
