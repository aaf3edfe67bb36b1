"""Whole streams of commands, valid and invalid in random order: the ledger's invariants hold after every one.

A hypothesis state machine sends a handful of patients' command objects — exactly what an
import line or an HTTP body carries, through ``parse_command`` — with dates drawn near what it
knows of each patient's course, so that a good share is recorded and the rest breaks a rule
or is malformed: enrollments (eligible or not), cycles in and out of order up to a 7th, right
and wrong bosutinib doses, InO infusions on and off schedule, toxicities, responses, ends of
treatment, follow-ups, deaths, corrections and voids of earlier entries, acknowledged
deviations, re-sent command ids and broken objects. After every command:

- a refused or invalid command changed nothing (the log's head, the entry count, the patient's
  document) and names a rule id (protocol.md's, or the ledger's own of docs/rules.md) or the
  broken field;
- after a recorded one, the patient's document equals what a second ledger replays from the
  store, the read models caught up agree with it, and every breach that the independent
  reading of ``tests.rule_oracle`` finds in the patient's history is covered by a deviation
  naming its rule.

When the examples are done, a rebuild of the read models equals the incrementally maintained
ones. Examples share the test's ledger: each has patients and a phase I stratum of its own.
``HYPOTHESIS_PROFILE=slow`` (tests/conftest.py) sends at least 10,000 commands on SQLite.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test
from sqlalchemy import func, select

from ledger.application import TrialLedger
from ledger.bootstrap import Settings, build_ledger
from ledger.clock import FixedClock
from ledger.domain.values import Actor
from ledger.errors import CommandRefused, InvalidCommand
from ledger.interfaces.schemas import parse_command
from ledger.persistence import EntryRow
from ledger.projections.projector import Projector
from ledger.projections.queries import row_status
from ledger.projections.tables import TABLES, read_model_tables
from ledger.queries import escalation_document, patient_document, patient_history
from tests.rule_oracle import DATE_FIELDS, Breach, Fact, RecordedCourse, breaches, read_course, unacknowledged

pytestmark = pytest.mark.slow

#: (examples, steps per example) by hypothesis profile and backend
SIZES = {
    "default": {"sqlite": (24, 45), "postgres": (6, 40)},
    "slow": {"sqlite": (250, 50), "postgres": (30, 50)},
}
SLOW_MINIMUM = 10_000  # commands generated on SQLite in the slow profile

PROTOCOL_RULES = frozenset({
    "ELIG-DIAGNOSIS", "ELIG-CD22", "ELIG-T315I", "CYCLE-CAP", "CYCLE-ORDER", "BOS-DAILY", "BOS-DOSE", "INO-DAYS", "INO-DAY1-ONLY", "INO-DOSE",
    "INO-ONCE", "TREAT-WINDOW", "FU-WINDOW", "FU-SCHEDULE", "DEATH-FINAL", "DLT-WINDOW", "ESC-3PLUS3", "ESC-COHORT", "PHASE2-OPEN",
    "CORRECTION-REASON", "DEVIATION",
})
#: the ledger's own rules (docs/rules.md) that a patient's commands can meet
LEDGER_RULES = frozenset({"PATIENT-UNKNOWN", "PATIENT-ENROLLED", "COMMAND-ID", "ENTRY-TARGET", "TOX-RESOLVED", "DATE-FUTURE"})

#: every command generated, by backend: "commands", "accepted", "duplicate", "invalid", "refused", "refused <RULE>"
GENERATED: dict[str, Counter[str]] = defaultdict(Counter)

BASE = date(2016, 1, 4)
DAY = timedelta(days=1)

#: each command's required fields (contract.md): a malformed object drops one of them
REQUIRED = {
    "enroll_patient": ("patient_id", "enrolled_on", "diagnosis", "phase", "cd22_percent", "abl_mutations", "bsa_m2"),
    "start_cycle": ("patient_id", "cycle", "started_on"),
    "record_bosutinib_dose": ("patient_id", "taken_on", "dose_mg"),
    "modify_bosutinib_dose": ("patient_id", "effective_on", "dose_mg", "reason"),
    "record_ino_infusion": ("patient_id", "given_on", "dose_mg_m2"),
    "report_toxicity": ("patient_id", "onset_on", "term", "grade", "attribution"),
    "resolve_toxicity": ("patient_id", "toxicity_id", "resolved_on"),
    "assess_response": ("patient_id", "assessed_on", "response"),
    "end_treatment": ("patient_id", "ended_on", "end_reason"),
    "record_follow_up": ("patient_id", "contacted_on", "vital_status"),
    "record_death": ("patient_id", "died_on"),
    "correct_entry": ("patient_id", "entry_id", "changes", "reason"),
    "void_entry": ("patient_id", "entry_id", "reason"),
}
#: a value of the wrong type (or shape) for each field a malformed object may carry
WRONG_TYPE: dict[str, Any] = {
    "patient_id": 42, "enrolled_on": "2016-02-30", "started_on": 20160101, "taken_on": "yesterday", "effective_on": [],
    "given_on": "2016-13-01", "onset_on": "soon", "resolved_on": 7, "assessed_on": "", "ended_on": "2016/03/01",
    "contacted_on": {"day": 1}, "died_on": "last week", "cycle": "second", "dose_mg": 2.5, "dose_mg_m2": "half",
    "grade": "severe", "cd22_percent": "many", "bsa_m2": [], "abl_mutations": "E255K", "hematologic": "perhaps",
    "term": [], "entry_id": None, "toxicity_id": 7, "changes": "grade 3",
}
#: a value outside each vocabulary
UNKNOWN_VALUE = {
    "phase": "III", "diagnosis": "ph+ all", "attribution": "MAYBE", "response": "GREAT", "cytogenetic": "ALL",
    "mrd": "UNSURE", "end_reason": "BORED", "vital_status": "MISSING",
}
TERMS = ("Rash", "Nausea", "ALT increased", "Thrombocytopenia", "Pneumonia")


@dataclass(frozen=True)
class Draft:
    """A command object, who sends it, the patient it is about, and the field it breaks (if it is malformed)."""

    raw: dict[str, Any]
    actor: Actor
    patient_id: str
    broken: str | None = None


@dataclass
class World:
    """What every example of one test shares: the ledger, its clock, its read models and the users."""

    backend: str
    ledger: TrialLedger
    database_url: str
    clock: FixedClock
    investigator: Actor
    coordinator: Actor
    projector: Projector
    examples: Iterator[int] = field(default_factory=itertools.count)
    command_ids: Iterator[int] = field(default_factory=itertools.count)

    @property
    def tally(self) -> Counter[str]:
        return GENERATED[self.backend]

    def head(self) -> int:
        return self.ledger.recorder.max_notification_id() or 0

    def entry_count(self) -> int:
        with self.ledger.transaction(commit=False) as session:
            return int(session.execute(select(func.count()).select_from(EntryRow)).scalar_one())

    def second_ledger(self) -> TrialLedger:
        """A ledger of its own on the same database, which keeps no aggregate in memory: every load replays the store."""
        replay = build_ledger(Settings(database_url=self.database_url, user="replayer"), clock=self.clock)
        replay.store.repository.cache = None
        return replay


# --- what the machine knows of a course, to draw dates near it -----------------------------


def cycles(course: RecordedCourse | None) -> list[Fact]:
    return sorted(course.of("CycleStarted"), key=lambda c: (c.data["cycle"], c.on)) if course else []


def enrolled_on(course: RecordedCourse | None) -> date:
    return course.enrollment.on if course else BASE


def latest(course: RecordedCourse | None, *kinds: str) -> date:
    """The latest clinical date of the course (of ``kinds`` only, when given)."""
    facts = (course.of(*kinds) if kinds else list(course.facts.values())) if course else []
    return max((f.on for f in facts), default=enrolled_on(course))


def dates_of(course: RecordedCourse | None, kind: str) -> set[date]:
    return {f.on for f in course.of(kind)} if course else set()


def prescribed(course: RecordedCourse | None, day: date) -> int:
    """The dose level, or the last modification in force on ``day``."""
    if course is None:
        return 300
    changes = sorted((f for f in course.of("BosutinibDoseModified") if f.on <= day), key=lambda f: f.on)
    level = course.enrollment.data["dose_level_mg"] or 300
    return int(changes[-1].data["dose_mg"]) if changes else int(level)


def value(v: Any) -> Any:
    return getattr(v, "value", v)


def responded_on(course: RecordedCourse | None) -> date | None:
    """The first CR, CRi, CCyR or MRD-negative assessment (protocol.md's qualifying responses)."""
    qualifying = [
        f.on for f in (course.of("ResponseAssessed") if course else [])
        if value(f.data["response"]) in ("CR", "CRi") or value(f.data.get("cytogenetic")) == "CCyR" or value(f.data.get("mrd")) == "NEGATIVE"
    ]
    return min(qualifying, default=None)


def iso(day: date) -> str:
    return day.isoformat()


def named(errors: dict[str, str], broken: str) -> bool:
    return any(name == broken or name.startswith(broken + ".") for name in errors)


def pick(data: st.DataObject, *weighted: tuple[int, Any]) -> Any:
    """One of the values, by weight; shrinks towards the first."""
    return data.draw(st.sampled_from([v for w, v in weighted for _ in range(w)]))


class CommandStreams(RuleBasedStateMachine):
    """Four patients of one example (three in phase I, one asking for phase II) and the commands sent about them."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        n = next(world.examples)
        self.stratum = f"X{n}"
        self.slots = [f"E{n}-P{k}" for k in (1, 2, 3, 4)]
        self.replay = world.second_ledger()
        self.courses: dict[str, RecordedCourse] = {}
        self.histories: dict[str, list[str]] = {}
        self.documents: dict[str, dict[str, Any]] = {}
        self.breaches: dict[str, set[Breach]] = defaultdict(set)
        self.acknowledged: dict[str, set[Breach]] = defaultdict(set)
        self.sent_with_ids: list[Draft] = []

    def teardown(self) -> None:
        try:
            fresh = build_ledger(Settings(database_url=self.world.database_url, user="auditor"), clock=self.world.clock)
            try:
                for pid, document in self.documents.items():
                    assert patient_document(fresh, pid) == document, f"a new ledger replays patient {pid} differently"
            finally:
                fresh.close()
        finally:
            self.replay.close()

    # --- the rules: one kind of command each ----------------------------------------------

    @initialize(data=st.data())
    def enroll_phase_one(self, data: st.DataObject) -> None:
        """Each example starts by asking to enroll its three phase I patients (not all of them eligible)."""
        for pid in self.slots[:3]:
            self.submit(self.enrollment(data, pid))

    @rule(data=st.data())
    def enroll(self, data: st.DataObject) -> None:
        self.submit(self.enrollment(data))

    @rule(data=st.data())
    def start_cycle(self, data: st.DataObject) -> None:
        self.submit(self.cycle(data))

    @rule(data=st.data())
    def take_bosutinib(self, data: st.DataObject) -> None:
        self.submit(self.dose(data))

    @rule(data=st.data())
    def modify_bosutinib(self, data: st.DataObject) -> None:
        self.submit(self.modification(data))

    @rule(data=st.data())
    def infuse_ino(self, data: st.DataObject) -> None:
        self.submit(self.infusion(data))

    @rule(data=st.data())
    def report_toxicity(self, data: st.DataObject) -> None:
        self.submit(self.toxicity(data))

    @rule(data=st.data())
    def resolve_toxicity(self, data: st.DataObject) -> None:
        self.submit(self.resolution(data))

    @rule(data=st.data())
    def assess_response(self, data: st.DataObject) -> None:
        self.submit(self.response(data))

    @rule(data=st.data())
    def end_treatment(self, data: st.DataObject) -> None:
        self.submit(self.end(data))

    @rule(data=st.data())
    def follow_up(self, data: st.DataObject) -> None:
        self.submit(self.contact(data))

    @rule(data=st.data())
    def record_death(self, data: st.DataObject) -> None:
        self.submit(self.death(data))

    @rule(data=st.data())
    def correct_entry(self, data: st.DataObject) -> None:
        self.submit(self.correction(data))

    @rule(data=st.data())
    def void_entry(self, data: st.DataObject) -> None:
        self.submit(self.void(data))

    @rule(data=st.data())
    def send_malformed(self, data: st.DataObject) -> None:
        self.submit(self.malformed(data))

    @rule(data=st.data())
    def resend(self, data: st.DataObject) -> None:
        """A command re-sent with its id is a duplicate; the id reused for another command is refused."""
        if not self.sent_with_ids:
            self.submit(self.dose(data))
            return
        draft = data.draw(st.sampled_from(self.sent_with_ids))
        if data.draw(st.booleans()):
            draft = replace(draft, raw={**draft.raw, "source": "EDC resend"})
        self.submit(draft)

    # --- drawing command objects ----------------------------------------------------------

    def patient(self, data: st.DataObject) -> tuple[str, RecordedCourse | None]:
        """Mostly an enrolled patient; now and then one who is not (PATIENT-UNKNOWN)."""
        enrolled = [p for p in self.slots if p in self.courses]
        pid = data.draw(st.sampled_from(enrolled if enrolled and pick(data, (19, True), (1, False)) else self.slots))
        return pid, self.courses.get(pid)

    def sent(self, data: st.DataObject, raw: dict[str, Any], pid: str) -> Draft:
        """How the command is sent: plainly, by a coordinator, as a deviation (an investigator's or not), with an id."""
        world = self.world
        how = pick(data, (10, "plain"), (2, "coordinator"), (3, "deviation"), (1, "coordinator's deviation"), (2, "command id"))
        actor = world.coordinator if how.startswith("coordinator") else world.investigator
        if how.endswith("deviation"):
            raw = {**raw, "deviation": True, "reason": raw.get("reason", "investigator's decision, see the source document")}
        if how == "command id":
            raw = {**raw, "command_id": f"{pid}-c{next(world.command_ids)}"}
        return Draft(raw, actor, pid)

    def enrollment(self, data: st.DataObject, pid: str | None = None) -> Draft:
        if pid is None:
            free = [p for p in self.slots if p not in self.courses]
            pid = data.draw(st.sampled_from(free if free and pick(data, (9, True), (1, False)) else self.slots))
        eligible = pick(data, (12, "eligible"), (1, "diagnosis"), (1, "cd22"), (1, "mutation"))
        raw = {
            "command": "enroll_patient",
            "patient_id": pid,
            "enrolled_on": iso(BASE + data.draw(st.integers(0, 500)) * DAY),
            "diagnosis": "AML" if eligible == "diagnosis" else data.draw(st.sampled_from(["PH_POS_ALL", "CML_LYMPHOID_BP"])),
            "phase": "II" if pid == self.slots[-1] else "I",
            "stratum": self.stratum,
            "cd22_percent": 5 if eligible == "cd22" else data.draw(st.integers(20, 100)),
            "abl_mutations": ["T315I"] if eligible == "mutation" else data.draw(st.sampled_from([[], ["E255K"]])),
            "bsa_m2": data.draw(st.sampled_from([1.8, 1.6, 2.1])),
        }
        return self.sent(data, raw, pid)

    def cycle(self, data: st.DataObject) -> Draft:
        pid, course = self.patient(data)
        started = cycles(course)
        last = started[-1] if started else None
        n = last.data["cycle"] if last else 0
        number = max(1, pick(data, (6, n + 1), (1, n), (1, n + 2), (1, 7)))
        anchor = last.on + 28 * DAY if last else enrolled_on(course) + DAY
        offset = pick(data, (3, 0), (2, 2), (1, 5), (1, -9), (1, -20))
        return self.sent(data, {"command": "start_cycle", "patient_id": pid, "cycle": number, "started_on": iso(anchor + offset * DAY)}, pid)

    def treatment_cycle(self, data: st.DataObject, course: RecordedCourse | None) -> Fact | None:
        """Mostly the last cycle started; sometimes an earlier one, or none (a date before any cycle)."""
        started = cycles(course)
        which = pick(data, (6, "last"), (2, "earlier"), (1, "none"))
        if not started or which == "none":
            return None
        return started[-1] if which == "last" else data.draw(st.sampled_from(started))

    def dose(self, data: st.DataObject) -> Draft:
        pid, course = self.patient(data)
        cycle = self.treatment_cycle(data, course)
        if cycle is None:
            day = enrolled_on(course) + data.draw(st.integers(0, 3)) * DAY
        else:
            taken = dates_of(course, "BosutinibDoseRecorded")
            days = [cycle.on + k * DAY for k in range(28)]
            free, twice = [d for d in days if d not in taken], [d for d in days if d in taken]
            which = pick(data, (6, "free"), (1, "twice"), (1, "outside"))
            if which == "free" and free:
                day = data.draw(st.sampled_from(free))
            elif which == "twice" and twice:
                day = data.draw(st.sampled_from(twice))
            else:
                day = cycle.on + data.draw(st.integers(28, 40)) * DAY
        dose = prescribed(course, day) + pick(data, (9, 0), (1, 100), (1, -100))
        return self.sent(data, {"command": "record_bosutinib_dose", "patient_id": pid, "taken_on": iso(day), "dose_mg": dose}, pid)

    def modification(self, data: st.DataObject) -> Draft:
        pid, course = self.patient(data)
        cycle = self.treatment_cycle(data, course)
        day = (cycle.on if cycle else enrolled_on(course)) + data.draw(st.integers(0, 27)) * DAY
        current = prescribed(course, day)
        dose = pick(data, (4, current - 100), (1, current + 100), (1, current - 50))
        if dose < 100:
            dose = current + 100  # never below the lowest dose a schema accepts: refused by BOS-DOSE instead
        raw = {"command": "modify_bosutinib_dose", "patient_id": pid, "effective_on": iso(day), "dose_mg": dose, "reason": "grade 3 rash"}
        return self.sent(data, raw, pid)

    def infusion(self, data: st.DataObject) -> Draft:
        pid, course = self.patient(data)
        cycle = self.treatment_cycle(data, course)
        if cycle is None:
            day, expected = enrolled_on(course) + data.draw(st.integers(0, 3)) * DAY, 0.8
        else:
            responded = responded_on(course)
            day1_only = responded is not None and cycle.on > responded
            given = dates_of(course, "InoInfusionRecorded")
            scheduled = [k for k in ((1,) if day1_only else (1, 8, 15)) if cycle.on + (k - 1) * DAY not in given]
            which = pick(data, (6, "scheduled"), (1, "again"), (1, "off day"), (1, "day 8"))
            if which == "scheduled" and scheduled:
                cycle_day = data.draw(st.sampled_from(scheduled))
            elif which == "again":
                cycle_day = data.draw(st.sampled_from([1, 8, 15]))
            elif which == "day 8":
                cycle_day = 8
            else:
                cycle_day = data.draw(st.sampled_from([2, 7, 9, 16, 22, 29]))
            day = cycle.on + (cycle_day - 1) * DAY
            expected = 1.0 if day1_only else 0.8 if cycle_day == 1 else 0.5
        dose = pick(data, (8, expected), (1, 0.3), (1, 1.2))
        return self.sent(data, {"command": "record_ino_infusion", "patient_id": pid, "given_on": iso(day), "dose_mg_m2": dose}, pid)

    def near_course(self, data: st.DataObject, course: RecordedCourse | None) -> date:
        """A date from a few days before enrollment to a few days after the latest fact."""
        first, last = enrolled_on(course) - 4 * DAY, latest(course) + 10 * DAY
        return first + data.draw(st.integers(0, (last - first).days)) * DAY

    def toxicity(self, data: st.DataObject) -> Draft:
        pid, course = self.patient(data)
        raw: dict[str, Any] = {
            "command": "report_toxicity",
            "patient_id": pid,
            "onset_on": iso(self.near_course(data, course)),
            "term": data.draw(st.sampled_from(TERMS)),
            "grade": pick(data, (2, 2), (2, 1), (2, 3), (1, 4), (1, 5)),
            "attribution": data.draw(st.sampled_from(["POSSIBLE", "UNRELATED", "UNLIKELY", "PROBABLE", "DEFINITE"])),
        }
        if data.draw(st.booleans()):
            raw["hematologic"] = data.draw(st.booleans())
        if pick(data, (4, False), (1, True)):
            raw["dlt"] = data.draw(st.booleans())
        return self.sent(data, raw, pid)

    def resolution(self, data: st.DataObject) -> Draft:
        pid, course = self.patient(data)
        toxicities = course.of("ToxicityReported") if course else []
        if not toxicities:
            raw = {"command": "resolve_toxicity", "patient_id": pid, "toxicity_id": "no-such-toxicity", "resolved_on": iso(latest(course))}
        else:
            tox = data.draw(st.sampled_from(toxicities))
            resolved = tox.on + pick(data, (3, 7), (2, 14), (1, 0), (1, -2)) * DAY
            raw = {"command": "resolve_toxicity", "patient_id": pid, "toxicity_id": tox.entry_id, "resolved_on": iso(resolved)}
        return self.sent(data, raw, pid)

    def response(self, data: st.DataObject) -> Draft:
        pid, course = self.patient(data)
        raw: dict[str, Any] = {
            "command": "assess_response",
            "patient_id": pid,
            "assessed_on": iso(self.near_course(data, course)),
            "response": pick(data, (3, "CR"), (1, "CRi"), (1, "PR"), (1, "NR"), (1, "PD"), (1, "MLFS")),
        }
        if data.draw(st.booleans()):
            raw["cytogenetic"] = data.draw(st.sampled_from(["CCyR", "PCyR", "NONE", "NOT_DONE"]))
        if data.draw(st.booleans()):
            raw["mrd"] = data.draw(st.sampled_from(["NEGATIVE", "POSITIVE", "NOT_DONE"]))
        return self.sent(data, raw, pid)

    def end(self, data: st.DataObject) -> Draft:
        pid, course = self.patient(data)
        treated = latest(course, "CycleStarted", "BosutinibDoseRecorded", "InoInfusionRecorded", "BosutinibDoseModified")
        ended = treated + pick(data, (3, 1), (2, 0), (1, 7), (1, -3)) * DAY
        reason = data.draw(st.sampled_from(["COMPLETED", "PROGRESSION", "TOXICITY", "TRANSPLANT", "WITHDRAWAL", "DEATH", "NO_RESPONSE"]))
        return self.sent(data, {"command": "end_treatment", "patient_id": pid, "ended_on": iso(ended), "end_reason": reason}, pid)

    def contact(self, data: st.DataObject) -> Draft:
        pid, course = self.patient(data)
        ends = dates_of(course, "TreatmentEnded")
        # after the end of treatment: in and out of the visit windows; before any: FU-WINDOW
        offset = pick(data, (2, 84), (1, 168), (1, 252), (1, 336), (1, 90), (1, -2), (1, 400)) if ends else 30
        contacted = (max(ends) if ends else latest(course)) + offset * DAY
        vital = pick(data, (5, "ALIVE"), (1, "DEAD"))
        return self.sent(data, {"command": "record_follow_up", "patient_id": pid, "contacted_on": iso(contacted), "vital_status": vital}, pid)

    def death(self, data: st.DataObject) -> Draft:
        pid, course = self.patient(data)
        died = latest(course) + pick(data, (3, 1), (2, 12), (1, 0), (1, -6)) * DAY
        return self.sent(data, {"command": "record_death", "patient_id": pid, "died_on": iso(died), "cause": "disease progression"}, pid)

    def amended(self, data: st.DataObject, course: RecordedCourse | None, enrollment: bool) -> tuple[str, Fact | None]:
        """The entry a correction or void names: mostly a fact in force; now and then a voided one, or none."""
        facts = [f for f in course.facts.values() if enrollment or f.kind != "PatientEnrolled"] if course else []
        voided = sorted(course.voided) if course else []
        which = pick(data, (12, "fact"), (1, "voided"), (1, "unknown"), (1, "enrollment"))
        if which == "fact" and facts:
            fact = data.draw(st.sampled_from(facts))
            return fact.entry_id, fact
        if which == "voided" and voided:
            return data.draw(st.sampled_from(voided)), None
        if which == "enrollment" and course:
            return course.enrollment.entry_id, course.enrollment
        return "no-such-entry", None

    def correction(self, data: st.DataObject) -> Draft:
        pid, course = self.patient(data)
        entry_id, fact = self.amended(data, course, enrollment=True)
        changes, broken = self.changes(data, fact)
        raw = {"command": "correct_entry", "patient_id": pid, "entry_id": entry_id, "changes": changes, "reason": "transcription error"}
        draft = self.sent(data, raw, pid)
        return replace(draft, broken=broken if fact is not None else None)

    def changes(self, data: st.DataObject, fact: Fact | None) -> tuple[dict[str, Any], str | None]:
        """Corrected values for a fact's fields, and the field named if they are malformed."""
        if fact is None:
            return {"grade": 3}, None  # refused before the changes are read (ENTRY-TARGET)
        date_field = DATE_FIELDS[fact.kind]
        how = pick(data, (8, "valid"), (1, "fixed field"), (1, "unknown field"), (1, "bad value"), (1, "same value"))
        if how == "fixed field":
            return {"patient_id": "P-other"}, "changes.patient_id"
        if how == "unknown field":
            return {"colour": "red"}, "changes.colour"
        if how == "bad value":
            return {date_field: "someday"}, f"changes.{date_field}"
        if how == "same value":
            return {date_field: iso(fact.on)}, "changes"
        options: list[tuple[str, Any]] = []
        if fact.kind != "PatientEnrolled":  # an enrollment's date decides much; only its other fields are corrected here
            options.append((date_field, iso(fact.on + pick(data, (2, 1), (2, -1), (1, 3), (1, -7), (1, 14)) * DAY)))
        options += self.other_changes(data, fact)
        name, new = data.draw(st.sampled_from(options))
        return {name: new}, None

    def other_changes(self, data: st.DataObject, fact: Fact) -> list[tuple[str, Any]]:
        """A corrected value for a field besides the date: a number, a dose, a grade, a response."""
        d = fact.data
        if fact.kind == "PatientEnrolled":
            return [("bsa_m2", 1.7 if d["bsa_m2"] != 1.7 else 1.9)]
        if fact.kind == "CycleStarted":
            return [("cycle", pick(data, *((1, n) for n in range(1, 8) if n != d["cycle"])))]
        if fact.kind == "BosutinibDoseRecorded":
            return [("dose_mg", d["dose_mg"] + 100)]
        if fact.kind == "InoInfusionRecorded":
            return [("dose_mg_m2", 0.5 if d["dose_mg_m2"] != 0.5 else 0.8)]
        if fact.kind == "ToxicityReported":
            return [("grade", d["grade"] % 5 + 1)]
        if fact.kind == "ResponseAssessed":
            return [("response", "PR" if value(d["response"]) != "PR" else "CR")]
        return []

    def void(self, data: st.DataObject) -> Draft:
        pid, course = self.patient(data)
        entry_id, _ = self.amended(data, course, enrollment=False)
        return self.sent(data, {"command": "void_entry", "patient_id": pid, "entry_id": entry_id, "reason": "entered for the wrong patient"}, pid)

    def malformed(self, data: st.DataObject) -> Draft:
        """A command object broken one way: a field missing, of the wrong type, outside its vocabulary, or unknown."""
        make: Callable[[st.DataObject], Draft] = data.draw(
            st.sampled_from(
                [self.dose, self.cycle, self.infusion, self.toxicity, self.response, self.end, self.contact, self.death, self.enrollment,
                 self.modification, self.void]
            )
        )
        draft = make(data)
        raw = dict(draft.raw)
        name = raw["command"]
        how = pick(data, (3, "missing"), (3, "wrong type"), (2, "unknown value"), (1, "unknown field"), (1, "no reason"), (1, "no command"))
        vocabulary = sorted(set(raw) & set(UNKNOWN_VALUE))
        if how == "missing":
            broken = data.draw(st.sampled_from(REQUIRED[name]))
            del raw[broken]
        elif how == "unknown value" and vocabulary:
            broken = data.draw(st.sampled_from(vocabulary))
            raw[broken] = UNKNOWN_VALUE[broken]
        elif how == "unknown field":
            broken = "colour"
            raw[broken] = "red"
        elif how == "no reason" and name not in ("modify_bosutinib_dose", "void_entry"):
            broken = "reason"
            raw["deviation"] = True
            raw.pop("reason", None)
        elif how == "no command":
            broken = "command"
            raw["command"] = "delete_patient"
        else:
            broken = data.draw(st.sampled_from(sorted(set(raw) & set(WRONG_TYPE))))
            raw[broken] = WRONG_TYPE[broken]
        return replace(draft, raw=raw, broken=broken)

    # --- sending, and the invariants after each command -----------------------------------

    def submit(self, draft: Draft) -> None:
        world, tally = self.world, self.world.tally
        world.clock.advance(milliseconds=10)
        tally["commands"] += 1
        head, count = world.head(), world.entry_count()
        try:
            outcome = world.ledger.handle(parse_command(draft.raw), draft.actor)
        except InvalidCommand as invalid:
            assert draft.broken is not None, f"{draft.raw} was refused as malformed: {invalid}"
            assert named(invalid.errors, draft.broken), f"{draft.raw}: the error {invalid} does not name {draft.broken}"
            tally["invalid"] += 1
            self.assert_unchanged(draft, head, count)
            return
        except CommandRefused as refusal:
            assert draft.broken is None, f"{draft.raw} breaks {draft.broken} but was refused by a rule: {refusal}"
            rules = [v.rule_id for v in refusal.violations]
            assert set(rules) <= PROTOCOL_RULES | LEDGER_RULES and str(refusal).startswith(rules[0] + ": "), f"{refusal} names no known rule"
            tally["refused"] += 1
            tally[f"refused {refusal.rule_id}"] += 1
            self.assert_unchanged(draft, head, count)
            return
        assert draft.broken is None, f"{draft.raw} breaks {draft.broken} but was recorded"
        if outcome.duplicate:
            tally["duplicate"] += 1
            self.assert_unchanged(draft, head, count)
            return
        tally["accepted"] += 1
        if draft.raw.get("command_id"):
            self.sent_with_ids.append(draft)
        self.assert_recorded(draft, outcome.entry_ids, [v.rule_id for v in outcome.deviations], count)

    def assert_unchanged(self, draft: Draft, head: int, count: int) -> None:
        assert (self.world.head(), self.world.entry_count()) == (head, count), f"{draft.raw} changed the store without being recorded"
        if draft.patient_id in self.documents:
            assert patient_document(self.world.ledger, draft.patient_id) == self.documents[draft.patient_id], f"{draft.raw} changed the patient"

    def assert_recorded(self, draft: Draft, entry_ids: list[str], deviated: list[str], count: int) -> None:
        world, pid = self.world, draft.patient_id
        assert world.entry_count() == count + len(entry_ids)
        history = patient_history(world.ledger, pid)["entries"]
        ids = [e["entry_id"] for e in history]
        before = self.histories.get(pid, [])
        assert ids[: len(before)] == before, "entries recorded earlier changed"
        new = history[len(before) :]
        assert new and {e["entry_id"] for e in new} <= set(entry_ids)
        recorded = [e["data"]["rule_id"] for e in new if e["type"] == "ProtocolDeviationRecorded"]
        assert sorted(recorded) == sorted(deviated) and (not recorded or draft.raw.get("deviation"))
        document = patient_document(world.ledger, pid)
        assert document == patient_document(self.replay, pid), f"after {draft.raw} the replayed state differs"
        assert document["entries"] == len(history) and document["deviations"] == self.deviations_in_force(history)
        if draft.raw["command"] == "enroll_patient":
            assert self.escalation(world.ledger) == self.escalation(self.replay)
        self.assert_read_models_agree(pid, document, ids)
        self.assert_no_unacknowledged_breach(draft, history, set(deviated))
        self.histories[pid], self.documents[pid] = ids, document

    def deviations_in_force(self, history: list[dict[str, Any]]) -> int:
        """Deviations not gone with a voided fact (or a correction of one)."""
        voided = {e["data"]["amends_entry_id"] for e in history if e["type"] == "EntryVoided"}
        gone = voided | {e["entry_id"] for e in history if e["type"] == "EntryCorrected" and e["data"]["amends_entry_id"] in voided}
        return sum(1 for e in history if e["type"] == "ProtocolDeviationRecorded" and e["data"]["deviating_entry_id"] not in gone)

    def escalation(self, ledger: TrialLedger) -> dict[str, Any] | str:
        try:
            return escalation_document(ledger, self.stratum)
        except CommandRefused as refusal:  # a phase II patient recorded as a deviation opens no escalation
            return str(refusal)

    def assert_read_models_agree(self, pid: str, document: dict[str, Any], ids: list[str]) -> None:
        world = self.world
        world.projector.catch_up()
        tables = world.projector.live  # the same table objects each time: their statements stay compiled
        patients, toxicities, audit = tables["rm_patients"], tables["rm_toxicities"], tables["rm_audit_trail"]
        with world.ledger.engine.connect() as connection:
            row = dict(connection.execute(select(patients).where(patients.c.patient_id == pid)).mappings().one())
            rows = connection.execute(select(toxicities).where(toxicities.c.patient_id == pid)).mappings().all()
            audited = dict(connection.execute(select(audit.c.entry_id, audit.c.event_type).where(audit.c.patient_id == pid)).tuples().all())
        same = ("phase", "stratum", "diagnosis", "dose_level_mg", "current_dose_mg", "cycle", "bosutinib_doses", "ino_infusions", "ino_total_mg_m2",
                "best_response", "first_response_on", "mrd_negative", "dlt", "treatment_ended_on", "end_reason", "died_on", "deviations", "entries")
        assert {k: row[k] for k in same} == {k: document[k] for k in same}
        assert row["follow_up_visits"] == document["follow_up"]["visits"]
        assert row_status(row, world.clock.today(), world.ledger.protocol) == document["status"]
        keys = ("entry_id", "term", "grade", "dlt", "onset_on", "resolved_on")
        assert sorted(tuple(r[k] for k in keys) for r in rows) == sorted(tuple(t[k] for k in keys) for t in document["toxicities"])
        assert set(ids) <= set(audited) and {audited[e] for e in set(audited) - set(ids)} <= {"PatientAssignedToDoseLevel"}

    def assert_no_unacknowledged_breach(self, draft: Draft, history: list[dict[str, Any]], deviated: set[str]) -> None:
        pid = draft.patient_id
        course = read_course(history)
        found = breaches(course)
        brought_about = found - self.breaches[pid]
        self.acknowledged[pid] = (self.acknowledged[pid] & found) | {b for b in brought_about if b.rule_id in deviated}
        missing = unacknowledged(course, found, self.acknowledged[pid])
        assert not missing, f"after {draft.raw} (deviations recorded: {sorted(deviated)}) these rules are broken with no deviation: {[str(b) for b in missing]}"
        self.breaches[pid], self.courses[pid] = found, course


def dump(ledger: TrialLedger) -> dict[str, list[tuple[Any, ...]]]:
    """Every read-model table's rows, sorted, for row-for-row comparison."""
    tables = read_model_tables()
    with ledger.engine.connect() as connection:
        return {name: sorted(tuple(row) for row in connection.execute(select(tables[name]))) for names in TABLES.values() for name in names}


def summary(backend: str, profile: str, seconds: float) -> str:
    tally = GENERATED[backend]
    total = tally["commands"] or 1
    refused = ", ".join(f"{k.split()[1]} {n}" for k, n in tally.most_common() if k.startswith("refused "))
    return (
        f"command streams on {backend} ({profile} profile): {tally['commands']} commands in {seconds:.1f} s; "
        f"{tally['accepted']} recorded ({100 * tally['accepted'] / total:.0f}%), {tally['duplicate']} duplicates, "
        f"{tally['refused']} refused ({100 * tally['refused'] / total:.0f}%), {tally['invalid']} invalid ({100 * tally['invalid'] / total:.0f}%); "
        f"refused by rule: {refused}"
    )


def test_streams_of_valid_and_invalid_commands_keep_the_ledger_consistent_after_every_command(
    ledger: TrialLedger, database_url: str, clock: FixedClock, investigator: Actor, coordinator: Actor
) -> None:
    backend = "sqlite" if database_url.startswith("sqlite") else "postgres"
    profile = settings.get_current_profile_name()
    examples, steps = SIZES.get(profile, SIZES["default"])[backend]
    GENERATED[backend].clear()
    world = World(backend, ledger, database_url, clock, investigator, coordinator, Projector(ledger))
    started = time.perf_counter()
    run_state_machine_as_test(
        lambda: CommandStreams(world),
        settings=settings(max_examples=examples, stateful_step_count=steps, deadline=None, suppress_health_check=[HealthCheck.too_slow]),
    )
    world.projector.catch_up()
    incremental = dump(ledger)
    Projector(ledger).rebuild()
    assert dump(ledger) == incremental, "a rebuild of the read models differs from the incrementally maintained ones"
    print("\n" + summary(backend, profile, time.perf_counter() - started))
    if profile == "slow" and backend == "sqlite":
        assert GENERATED[backend]["commands"] >= SLOW_MINIMUM
