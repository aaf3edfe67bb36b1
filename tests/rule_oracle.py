"""A second, independent reading of protocol.md's treatment rules over a patient's recorded history.

The ledger checks each command as it arrives (``ledger.policies``, over the folds of
``ledger.state``). This module shares no code with either: it reads the entries of
``patient_history`` as they stand — corrections applied to the entries they amend, voided
entries dropped — and lists every breach it sees of BOS-DAILY, CYCLE-CAP, CYCLE-ORDER,
INO-DAYS, INO-ONCE, DEATH-FINAL and TREAT-WINDOW, each with the entries involved. A breach is
acceptable only when a ``ProtocolDeviationRecorded`` entry names its rule.

Where a rule's reach is a matter of interpretation, only its unambiguous part is checked:
after a death, later facts are DEATH-FINAL's (TREAT-WINDOW takes the death day itself); the
"after the end of treatment" and "after the death" parts are read only when exactly one end
of treatment, and one death, is in force; a cycle's order only when its number and its
predecessor's were each started once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

# the shipped protocol's parameters (protocol.md; ledger/protocol/nct02311998-v1.0.toml)
CYCLE_DAYS = 28
BOSUTINIB_DAYS = 28
MAX_CYCLES = 6
INO_DAYS = (1, 8, 15)

#: the clinical date of each kind of fact (contract.md's commands)
DATE_FIELDS = {
    "PatientEnrolled": "enrolled_on",
    "CycleStarted": "started_on",
    "BosutinibDoseRecorded": "taken_on",
    "BosutinibDoseModified": "effective_on",
    "InoInfusionRecorded": "given_on",
    "ToxicityReported": "onset_on",
    "ToxicityResolved": "resolved_on",
    "ResponseAssessed": "assessed_on",
    "TreatmentEnded": "ended_on",
    "FollowUpRecorded": "contacted_on",
    "LostToFollowUp": "lost_on",
    "DeathRecorded": "died_on",
}
#: what TREAT-WINDOW bounds: "cycles, doses, infusions and dose modifications"
TREATMENT = ("CycleStarted", "BosutinibDoseRecorded", "InoInfusionRecorded", "BosutinibDoseModified")


@dataclass(frozen=True)
class Fact:
    """A clinical fact in force: its entry, kind, clinical date and fields (as last corrected)."""

    entry_id: str
    kind: str
    on: date
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Deviation:
    """An acknowledged deviation: the rule it names and the entries it was recorded for.

    ``ties`` holds the entry it was recorded with and, when that entry is a correction or a
    void, the fact it amends.
    """

    rule_id: str
    ties: frozenset[str]


@dataclass(frozen=True)
class Breach:
    """A rule broken by the facts in force; ``why`` says how (not part of its identity)."""

    rule_id: str
    entry_ids: frozenset[str]
    why: str = field(compare=False)

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.why}"


@dataclass
class RecordedCourse:
    """A patient's facts in force, in recorded order, and the deviations acknowledged for them."""

    facts: dict[str, Fact]
    voided: set[str]
    deviations: list[Deviation]

    def of(self, *kinds: str) -> list[Fact]:
        return [f for f in self.facts.values() if f.kind in kinds]

    def only(self, kind: str) -> Fact | None:
        """The one fact of ``kind`` in force, or None when there is none or more than one."""
        found = self.of(kind)
        return found[0] if len(found) == 1 else None

    @property
    def enrollment(self) -> Fact:
        return self.of("PatientEnrolled")[0]

    def cycle_on(self, day: date) -> Fact | None:
        """The cycle running on ``day``: the latest started on or before it."""
        started = [c for c in self.of("CycleStarted") if c.on <= day]
        return max(started, key=lambda c: (c.on, c.data["cycle"])) if started else None

    def cycle_day(self, day: date) -> tuple[Fact, int] | None:
        cycle = self.cycle_on(day)
        return None if cycle is None else (cycle, (day - cycle.on).days + 1)


def read_course(entries: Iterable[Mapping[str, Any]]) -> RecordedCourse:
    """The course that ``patient_history`` entries (oldest first) add up to."""
    facts: dict[str, Fact] = {}
    voided: set[str] = set()
    amends: dict[str, str] = {}
    recorded: list[tuple[str, str]] = []  # (rule id, deviating entry id)
    for entry in entries:
        kind, entry_id, data = entry["type"], entry["entry_id"], entry["data"]
        if kind in DATE_FIELDS:
            facts[entry_id] = Fact(entry_id, kind, data[DATE_FIELDS[kind]], dict(data))
        elif kind == "EntryCorrected":
            target = amends[entry_id] = data["amends_entry_id"]
            if target in facts:
                old = facts[target]
                changed = {**old.data, **data["changes"]}
                facts[target] = Fact(target, old.kind, changed[DATE_FIELDS[old.kind]], changed)
        elif kind == "EntryVoided":
            target = amends[entry_id] = data["amends_entry_id"]
            facts.pop(target, None)
            voided.add(target)
        elif kind == "ProtocolDeviationRecorded":
            recorded.append((data["rule_id"], data["deviating_entry_id"]))
    deviations = [Deviation(rule, frozenset({of, amends.get(of, of)})) for rule, of in recorded]
    return RecordedCourse(facts, voided, deviations)


def breaches(course: RecordedCourse) -> set[Breach]:
    """Every breach of the rules read here that the facts in force show."""
    return {*_bos_daily(course), *_cycle_cap(course), *_cycle_order(course), *_ino(course), *_death_final(course), *_treat_window(course)}


def unacknowledged(course: RecordedCourse, found: Iterable[Breach], acknowledged: set[Breach]) -> list[Breach]:
    """The breaches no deviation naming their rule covers.

    A breach is covered by a deviation of its rule recorded for one of its entries (or for a
    correction or void of one), or — in ``acknowledged`` — by one recorded in the very
    command that brought the breach about (a void that leaves a later cycle without its
    predecessor is acknowledged on the void).
    """
    return [
        b for b in found
        if b not in acknowledged and not any(d.rule_id == b.rule_id and d.ties & b.entry_ids for d in course.deviations)
    ]


def _ids(*facts: Fact) -> frozenset[str]:
    return frozenset(f.entry_id for f in facts)


def _bos_daily(course: RecordedCourse) -> list[Breach]:
    """At most one dose per calendar day, only on days 1-28 of a started cycle."""
    found = []
    by_day: dict[date, list[Fact]] = defaultdict(list)
    for dose in course.of("BosutinibDoseRecorded"):
        by_day[dose.on].append(dose)
        running = course.cycle_day(dose.on)
        if running is None or running[1] > BOSUTINIB_DAYS:
            where = "before any cycle" if running is None else f"on day {running[1]} of cycle {running[0].data['cycle']}"
            found.append(Breach("BOS-DAILY", _ids(dose), f"a dose on {dose.on} is {where}"))
    found += [Breach("BOS-DAILY", _ids(*doses), f"{len(doses)} doses on {day}") for day, doses in by_day.items() if len(doses) > 1]
    return found


def _cycle_cap(course: RecordedCourse) -> list[Breach]:
    return [Breach("CYCLE-CAP", _ids(c), f"cycle {c.data['cycle']} started") for c in course.of("CycleStarted") if c.data["cycle"] > MAX_CYCLES]


def _cycle_order(course: RecordedCourse) -> list[Breach]:
    """Cycles start once each, in order, cycle n+1 not before day 29 of cycle n."""
    numbered: dict[int, list[Fact]] = defaultdict(list)
    for cycle in course.of("CycleStarted"):
        numbered[cycle.data["cycle"]].append(cycle)
    found = []
    for n, cycles in numbered.items():
        if len(cycles) > 1:
            found.append(Breach("CYCLE-ORDER", _ids(*cycles), f"cycle {n} started {len(cycles)} times"))
            continue
        if n == 1:
            continue
        previous = numbered.get(n - 1, [])
        if not previous:
            found.append(Breach("CYCLE-ORDER", _ids(cycles[0]), f"cycle {n} started with no cycle {n - 1}"))
        elif len(previous) == 1 and cycles[0].on < previous[0].on + timedelta(days=CYCLE_DAYS):
            found.append(
                Breach("CYCLE-ORDER", _ids(previous[0], cycles[0]), f"cycle {n} on {cycles[0].on}, cycle {n - 1} on {previous[0].on}")
            )
    return found


def _ino(course: RecordedCourse) -> list[Breach]:
    """INO-DAYS: only on days 1, 8, 15 of a started cycle; INO-ONCE: one infusion per such day."""
    found = []
    scheduled: dict[date, list[Fact]] = defaultdict(list)
    for infusion in course.of("InoInfusionRecorded"):
        running = course.cycle_day(infusion.on)
        if running is None or running[1] not in INO_DAYS:
            where = "before any cycle" if running is None else f"day {running[1]} of cycle {running[0].data['cycle']}"
            found.append(Breach("INO-DAYS", _ids(infusion), f"an infusion on {infusion.on}, {where}"))
        else:
            scheduled[infusion.on].append(infusion)
    found += [Breach("INO-ONCE", _ids(*given), f"{len(given)} infusions on {day}") for day, given in scheduled.items() if len(given) > 1]
    return found


def _death_final(course: RecordedCourse) -> list[Breach]:
    """Nothing dated after a death; no second death."""
    deaths = course.of("DeathRecorded")
    if len(deaths) > 1:
        return [Breach("DEATH-FINAL", _ids(*deaths), f"{len(deaths)} deaths recorded")]
    if not deaths:
        return []
    death = deaths[0]
    return [
        Breach("DEATH-FINAL", _ids(f, death), f"{f.kind} on {f.on}, after the death on {death.on}")
        for f in course.facts.values()
        if f.kind not in ("PatientEnrolled", "DeathRecorded") and f.on > death.on
    ]


def _treat_window(course: RecordedCourse) -> list[Breach]:
    """Treatment on or after enrollment, on or before the end of treatment, not on the day of death."""
    enrolled, ended, death = course.enrollment, course.only("TreatmentEnded"), course.only("DeathRecorded")
    found = []
    for t in course.of(*TREATMENT):
        if t.on < enrolled.on:
            found.append(Breach("TREAT-WINDOW", _ids(t, enrolled), f"{t.kind} on {t.on}, before enrollment on {enrolled.on}"))
        if ended is not None and t.on > ended.on:
            found.append(Breach("TREAT-WINDOW", _ids(t, ended), f"{t.kind} on {t.on}, after the end of treatment on {ended.on}"))
        if death is not None and t.on == death.on:
            found.append(Breach("TREAT-WINDOW", _ids(t, death), f"{t.kind} on the day of death, {t.on}"))
    return found
