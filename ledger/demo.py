"""``ledger demo``: record a clearly labelled SYNTHETIC trial into an empty ledger.

The demo writes through ``TrialLedger.handle`` with the typed commands of
``ledger.commands``, exactly as every other writer does, so every rule of protocol.md checks
every line of it. Nothing in it describes a real patient: ids are ``D101``..., the source of
every command is ``SYNTHETIC DEMO`` and the output says so first.

The story, in clinical-date order:

- phase I, stratum ``default``, 3+3 on bosutinib 300/400/500 mg: 0/3 DLTs at 300 mg
  (ESCALATE), 1/3 at 400 mg (EXPAND), 1/6 at 400 mg (ESCALATE), 2/3 at 500 mg
  (MTD_DECLARED, MTD 400 mg); each decision is dated after the cohort's DLT windows closed;
- phase II at 400 mg, opened after the MTD decision;
- the responder ``D201``: CR with CCyR and MRD-negative on day 28 of cycle 1, so cycles 2-6
  (all started after that date) get InO 1.0 mg/m2 on day 1 only; cycle 1's day-8 infusion
  was given on day 9 (clinic closed for Labor Day), an acknowledged INO-DAYS deviation; a
  platelet count grade corrected after source-document verification; six cycles completed, a
  seventh refused by CYCLE-CAP, then follow-up every 84 days for a year.

Each patient's course is a ``Course`` (a few numbers a reader can check against the protocol);
``_course_steps`` turns it into dated commands, and ``run_demo`` records all steps in date
order, narrating the milestones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import TextIO

from ledger.application import TrialLedger
from ledger.commands import (
    AssessResponse,
    Command,
    CorrectEntry,
    DecideEscalation,
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
    Decision,
    DiseaseStatus,
    EndReason,
    Mrd,
    Phase,
    Response,
    Role,
    VitalStatus,
)
from ledger.errors import CommandRefused
from ledger.interfaces import render
from ledger.protocol import Protocol
from ledger.queries import escalation_document, patient_document, patient_history

SOURCE = "SYNTHETIC DEMO"
STRATUM = "default"
RESPONDER = "D201"
COORDINATOR = Actor("demo.coordinator", Role.COORDINATOR)
INVESTIGATOR = Actor("demo.investigator", Role.INVESTIGATOR)

BANNER = """\
==============================================================================
  SYNTHETIC DEMO DATA -- NOT REAL PATIENTS
  A made-up course of trial NCT02311998 (bosutinib + inotuzumab ozogamicin),
  recorded through the ledger's ordinary write path. Every entry carries
  source "SYNTHETIC DEMO"; patient ids D101-D112 (phase I), D201-D204 (phase II).
=============================================================================="""

D = date.fromisoformat


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


def run_demo(ledger: TrialLedger, out: TextIO) -> int:
    """Record the synthetic trial into ``ledger``, which must be empty; print the story.

    Returns 0, or 1 (recording nothing) when the database already holds entries.
    """
    if ledger.store.recorder.max_notification_id() is not None:
        print("The demo needs an empty database: this one already holds ledger entries, so nothing was recorded.", file=out)
        print("Point LEDGER_DATABASE_URL at a new database (e.g. sqlite:////tmp/demo.sqlite) and run it again.", file=out)
        return 1
    protocol = ledger.protocol
    print(BANNER, file=out)
    print(file=out)
    started = time.perf_counter()
    timeline = _trial(protocol)
    recorded = _record(ledger, timeline.ordered(), out)
    elapsed = time.perf_counter() - started

    print(file=out)
    print("Phase I dose escalation (3+3), as recorded:", file=out)
    print(render.escalation(escalation_document(ledger)), file=out)
    print(file=out)
    ended = patient_document(ledger, RESPONDER).get("treatment_ended_on")
    in_follow_up = ended + timedelta(days=200) if isinstance(ended, date) else None
    print(f"Responder {RESPONDER} on {in_follow_up}, during the follow-up year:", file=out)
    print(render.patient(patient_document(ledger, RESPONDER, valid_on=in_follow_up)), file=out)
    print(file=out)
    print(f"Timeline of responder {RESPONDER}:", file=out)
    print(render.history(patient_history(ledger, RESPONDER)), file=out)
    print(file=out)
    patients = sum(isinstance(step.build, EnrollPatient) for _, _, step in timeline.steps)
    print(
        f"SYNTHETIC DEMO: recorded {recorded} entries for {patients} synthetic patients "
        f"in {elapsed:.1f} s; MTD {escalation_document(ledger)['strata'][0]['mtd_mg']} mg.",
        file=out,
    )
    return 0


def _record(ledger: TrialLedger, steps: list[Step], out: TextIO) -> int:
    """Handle every step in order; returns the number of entries recorded."""
    ids: dict[str, str] = {}
    count = 0
    for step in steps:
        built = step.build if isinstance(step.build, Command) else step.build(ids)
        command = replace(built, source=SOURCE)  # every entry is labelled synthetic
        try:
            outcome = ledger.handle(command, step.actor)
        except CommandRefused as error:
            if step.refusal == error.rule_id:
                print(f"{step.on}  {step.say}", file=out)
                print(f"            refused, as the protocol requires -- {error}", file=out)
                continue
            error.add_note(f"demo step on {step.on.isoformat()}: {command!r}")
            raise
        if step.refusal is not None:
            raise RuntimeError(f"demo: {command.name} on {step.on} was expected to be refused by {step.refusal}, but was recorded")
        count += len(outcome.entry_ids)
        if step.label is not None:
            ids[step.label] = outcome.entry_ids[0]
        if step.say:
            print(f"{step.on}  {step.say}", file=out)
        for violation in outcome.deviations:
            print(f"            acknowledged protocol deviation {violation}", file=out)
    return count


# --- the synthetic trial ------------------------------------------------------------------


def _trial(protocol: Protocol) -> Timeline:
    low, mid, high = protocol.dose_levels_mg  # the story is written for three levels
    timeline = Timeline()
    for course in _phase_1(low, mid, high) + _phase_2(mid):
        timeline.extend(_course_steps(course, protocol))
    decisions = [
        (D("2015-02-26"), low, Decision.ESCALATE, None, f"0/3 DLTs at {low} mg"),
        (D("2015-04-16"), mid, Decision.EXPAND, None, f"1/3 DLTs at {mid} mg"),
        (D("2015-06-04"), mid, Decision.ESCALATE, None, f"1/6 DLTs at {mid} mg"),
        (D("2015-07-23"), high, Decision.MTD_DECLARED, mid, f"2/3 DLTs at {high} mg; 1/6 at {mid} mg"),
    ]
    for on, dose, decision, mtd, why in decisions:
        reason = f"3+3 review at {dose} mg after the DLT windows closed"
        command = DecideEscalation(stratum=STRATUM, decided_on=on, dose_mg=dose, decision=decision, mtd_mg=mtd, reason=reason)
        mtd_text = f", MTD {mtd} mg" if mtd else ""
        timeline.add(Step(on, INVESTIGATOR, command, say=f"3+3 decision at {dose} mg: {decision.value}{mtd_text} ({why})"))
    return timeline


def _phase_1(low: int, mid: int, high: int) -> list[Course]:
    nausea = Tox(1, 3, "Nausea", 1, Attribution.POSSIBLE, resolved_after_days=6)
    platelets = Tox(1, 14, "Platelet count decreased", 3, Attribution.POSSIBLE, hematologic=True, resolved_after_days=12)
    neutrophils = Tox(1, 18, "Neutrophil count decreased", 4, Attribution.PROBABLE, hematologic=True, resolved_after_days=9)
    cr = Assessed(1, 28, Response.CR, Cytogenetic.CCyR, Mrd.NEGATIVE)
    cri = Assessed(1, 28, Response.CRi, Cytogenetic.CCyR, Mrd.POSITIVE, 0.002)
    phase = Phase.I
    # Course(id, phase, enrolled on, bosutinib mg, cycles, birth year, sex, ...)
    return [
        # 300 mg: three patients, no DLT
        Course("D101", phase, D("2015-01-12"), low, 4, 1958, "F", toxicities=(nausea, platelets), assessments=(cri,),
               end_reason=EndReason.TRANSPLANT),
        Course("D102", phase, D("2015-01-19"), low, 2, 1949, "M", diagnosis="CML_LYMPHOID_BP", abl_mutations=("E255K",),
               toxicities=(neutrophils,), assessments=(Assessed(1, 28, Response.PR, Cytogenetic.PCyR), Assessed(2, 28, Response.PD)),
               end_reason=EndReason.PROGRESSION, disease_status=DiseaseStatus.RELAPSE, follow_up_days=(84,),
               died_days_after_end=130, cause_of_death="progressive leukemia"),
        Course("D103", phase, D("2015-01-26"), low, 6, 1953, "M", toxicities=(nausea,), assessments=(cr,),
               end_reason=EndReason.COMPLETED),
        # 400 mg: one DLT in the first three (rash), none in the next three
        Course("D104", phase, D("2015-03-02"), mid, 6, 1960, "F", toxicities=(platelets,), assessments=(cr,),
               end_reason=EndReason.COMPLETED),
        Course("D105", phase, D("2015-03-09"), mid, 3, 1951, "M", cd22_percent=85.0,
               toxicities=(Tox(1, 12, "Rash maculo-papular", 3, Attribution.POSSIBLE, resolved_after_days=14), neutrophils),
               held=(Held(1, 12, 18),), reduction=Reduction(1, 19, low, "grade 3 rash (DLT); resumed one level lower"),
               assessments=(cri,), end_reason=EndReason.TRANSPLANT),
        Course("D106", phase, D("2015-03-16"), mid, 2, 1947, "M", abl_mutations=("Y253H",), toxicities=(nausea,),
               assessments=(Assessed(1, 28, Response.NR, Cytogenetic.NONE, Mrd.POSITIVE, 0.12), Assessed(2, 28, Response.NR)),
               end_reason=EndReason.NO_RESPONSE, disease_status=DiseaseStatus.RELAPSE, follow_up_days=(84, 168)),
        Course("D107", phase, D("2015-04-20"), mid, 6, 1966, "F", toxicities=(platelets, neutrophils), assessments=(cr,),
               end_reason=EndReason.COMPLETED),
        Course("D108", phase, D("2015-04-27"), mid, 3, 1955, "M", diagnosis="CML_LYMPHOID_BP", toxicities=(nausea,),
               assessments=(cr,), end_reason=EndReason.TRANSPLANT),
        Course("D109", phase, D("2015-05-04"), mid, 5, 1962, "F", abl_mutations=("F317L",), toxicities=(platelets,),
               assessments=(Assessed(1, 28, Response.CRp, Cytogenetic.PCyR), Assessed(2, 28, Response.CRi, Cytogenetic.CCyR)),
               end_reason=EndReason.WITHDRAWAL, follow_up_days=()),
        # 500 mg: two DLTs of three, so 400 mg (1/6) is the MTD
        Course("D110", phase, D("2015-06-08"), high, 2, 1950, "M",
               toxicities=(Tox(1, 15, "Alanine aminotransferase increased", 3, Attribution.PROBABLE, resolved_after_days=10), platelets),
               held=(Held(1, 15, 21),), reduction=Reduction(1, 22, mid, "grade 3 ALT increase (DLT); resumed one level lower"),
               assessments=(Assessed(1, 28, Response.PR), Assessed(2, 28, Response.PD)), end_reason=EndReason.PROGRESSION,
               disease_status=DiseaseStatus.RELAPSE),
        Course("D111", phase, D("2015-06-15"), high, 1, 1957, "F",
               toxicities=(Tox(1, 12, "Diarrhea", 3, Attribution.PROBABLE, serious=True, resolved_after_days=8),),
               held=(Held(1, 12, 18),), reduction=Reduction(1, 19, mid, "grade 3 diarrhea (DLT); resumed one level lower"),
               assessments=(Assessed(1, 28, Response.MLFS),), end_reason=EndReason.TOXICITY, disease_status=DiseaseStatus.UNKNOWN),
        Course("D112", phase, D("2015-06-22"), high, 4, 1964, "M", toxicities=(nausea, neutrophils), assessments=(cr,),
               reduction=Reduction(2, 4, mid, f"MTD declared at {mid} mg"), end_reason=EndReason.TRANSPLANT),
    ]


def _phase_2(mtd: int) -> list[Course]:
    phase = Phase.II
    cr_mrd_negative = Assessed(1, 28, Response.CR, Cytogenetic.CCyR, Mrd.NEGATIVE)
    return [
        # The responder: CR + CCyR + MRD-negative on day 28 of cycle 1, the day before cycle 2
        # starts, so cycles 2-6 (all started after it) get InO on day 1 only.
        Course(
            RESPONDER, phase, D("2015-08-27"), mtd, 6, 1959, "F", cd22_percent=92.0, bsa_m2=1.72, days_to_cycle_1=4,
            toxicities=(
                Tox(1, 2, "Nausea", 2, Attribution.POSSIBLE, resolved_after_days=5),
                Tox(1, 10, "Platelet count decreased", 2, Attribution.POSSIBLE, hematologic=True, resolved_after_days=11,
                    corrected_grade=3, correction_reason="source document verification: grade 3 per lab report"),
            ),
            moved_infusion=MovedInfusion(1, 8, 9, "clinic closed on cycle day 8 (Labor Day); InO given on day 9"),
            assessments=(cr_mrd_negative, Assessed(6, 28, Response.CR, Cytogenetic.CCyR, Mrd.NEGATIVE)),
            end_reason=EndReason.COMPLETED, try_extra_cycle=True,
        ),
        Course("D202", phase, D("2015-09-10"), mtd, 6, 1952, "M", abl_mutations=("E255K",),
               toxicities=(Tox(1, 16, "Neutrophil count decreased", 3, Attribution.POSSIBLE, hematologic=True, resolved_after_days=10),),
               assessments=(Assessed(1, 28, Response.PR, Cytogenetic.PCyR, Mrd.POSITIVE, 0.03),
                            Assessed(2, 28, Response.CRi, Cytogenetic.CCyR, Mrd.POSITIVE, 0.0004)),
               end_reason=EndReason.COMPLETED),
        Course("D203", phase, D("2015-10-01"), mtd, 3, 1945, "M", diagnosis="CML_LYMPHOID_BP",
               toxicities=(Tox(1, 5, "Nausea", 1, Attribution.UNLIKELY, resolved_after_days=4),),
               assessments=(Assessed(1, 28, Response.PR), Assessed(3, 28, Response.PD)), end_reason=EndReason.PROGRESSION,
               disease_status=DiseaseStatus.RELAPSE, follow_up_days=(84,), died_days_after_end=121, cause_of_death="progressive leukemia"),
        Course("D204", phase, D("2015-10-22"), mtd, 2, 1968, "F",
               toxicities=(Tox(1, 14, "Platelet count decreased", 4, Attribution.POSSIBLE, hematologic=True, resolved_after_days=15),),
               assessments=(cr_mrd_negative,), end_reason=EndReason.TRANSPLANT),
    ]


def _course_steps(c: Course, protocol: Protocol) -> list[Step]:
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
