"""Treatment rules: TREAT-WINDOW, DEATH-FINAL, CYCLE-CAP, CYCLE-ORDER, BOS-DAILY, BOS-DOSE,
INO-DAYS, INO-DAY1-ONLY, INO-DOSE, INO-ONCE.

Each check takes the patient's state as known when the command is recorded (every valid
date) and compares dates itself, so a back-dated fact is checked against the course as it
stood on its own date and against anything already recorded for that date.
"""

from __future__ import annotations

from datetime import date, timedelta

from ledger.commands import (
    EndTreatment,
    ModifyBosutinibDose,
    RecordBosutinibDose,
    RecordDeath,
    RecordInoInfusion,
    StartCycle,
)
from ledger.errors import Violation
from ledger.protocol import Protocol
from ledger.state import Cycle, PatientState

EPSILON = 1e-6


def _d(day: date) -> str:
    return day.isoformat()


def check_death_final(state: PatientState, day: date, what: str) -> list[Violation]:
    """DEATH-FINAL: nothing dated after a recorded death."""
    if state.died_on is not None and day > state.died_on:
        return [
            Violation(
                "DEATH-FINAL",
                f"patient {state.patient_id} died on {_d(state.died_on)}; {what} dated "
                f"{_d(day)} cannot be added",
            )
        ]
    return []


def check_treatment_window(state: PatientState, day: date, what: str) -> list[Violation]:
    """TREAT-WINDOW: on or after enrollment, on or before end of treatment, before death.

    A date after both the end of treatment and the death breaks both rules, and both are named
    (a deviation acknowledges each).
    """
    pid = state.patient_id
    if state.enrolled_on is not None and day < state.enrolled_on:
        return [Violation("TREAT-WINDOW", f"{what} on {_d(day)} is before patient {pid} was enrolled on {_d(state.enrolled_on)}")]
    found = []
    if state.treatment_ended_on is not None and day > state.treatment_ended_on:
        found.append(Violation("TREAT-WINDOW", f"treatment of patient {pid} ended on {_d(state.treatment_ended_on)}; {what} on {_d(day)} is after it"))
    if state.died_on is not None and day == state.died_on and not found:
        found.append(Violation("TREAT-WINDOW", f"patient {pid} died on {_d(day)}; {what} must be dated before the death"))
    return found + check_death_final(state, day, what)


def check_start_cycle(state: PatientState, cmd: StartCycle, protocol: Protocol) -> list[Violation]:
    pid, n = state.patient_id, cmd.cycle
    found = check_treatment_window(state, cmd.started_on, f"cycle {n}")
    if n > protocol.max_cycles:
        found.append(
            Violation(
                "CYCLE-CAP",
                f"patient {pid} may receive at most {protocol.max_cycles} cycles; cycle {n} cannot start",
            )
        )
    existing = state.cycle_numbered(n)
    if existing is not None:
        found.append(Violation("CYCLE-ORDER", f"cycle {n} of patient {pid} already started on {_d(existing.started_on)}"))
        return found
    previous = state.cycle_numbered(n - 1)
    if n > 1 and previous is None:
        found.append(Violation("CYCLE-ORDER", f"cycle {n - 1} of patient {pid} has not started; cycles start in order"))
    elif previous is not None:
        earliest = previous.started_on + timedelta(days=protocol.cycle_days)
        if cmd.started_on < earliest:
            found.append(
                Violation(
                    "CYCLE-ORDER",
                    f"cycle {n} of patient {pid} cannot start before {_d(earliest)} "
                    f"(day {protocol.cycle_days + 1} of cycle {n - 1}, which started on {_d(previous.started_on)})",
                )
            )
    return found


def check_end_treatment(state: PatientState, cmd: EndTreatment) -> list[Violation]:
    pid = state.patient_id
    found = check_death_final(state, cmd.ended_on, "an end of treatment")
    if state.treatment_ended_on is not None:
        found.append(Violation("TREAT-WINDOW", f"treatment of patient {pid} already ended on {_d(state.treatment_ended_on)}"))
    if state.enrolled_on is not None and cmd.ended_on < state.enrolled_on:
        found.append(Violation("TREAT-WINDOW", f"end of treatment on {_d(cmd.ended_on)} is before enrollment on {_d(state.enrolled_on)}"))
    later = _latest_treatment_date(state)
    if later is not None and later > cmd.ended_on:
        found.append(
            Violation(
                "TREAT-WINDOW",
                f"patient {pid} has treatment recorded on {_d(later)}, after the proposed end of treatment on {_d(cmd.ended_on)}",
            )
        )
    return found


def _latest_treatment_date(state: PatientState) -> date | None:
    dates = (
        [c.started_on for c in state.cycles]
        + [d[0] for d in state.doses]
        + [i.given_on for i in state.infusions]
        + [m[0] for m in state.modifications]
    )
    return max(dates) if dates else None


def check_death(state: PatientState, cmd: RecordDeath) -> list[Violation]:
    pid = state.patient_id
    if state.died_on is not None:
        return [Violation("DEATH-FINAL", f"the death of patient {pid} was already recorded on {_d(state.died_on)}")]
    found: list[Violation] = []
    if state.enrolled_on is not None and cmd.died_on < state.enrolled_on:
        found.append(Violation("TREAT-WINDOW", f"death on {_d(cmd.died_on)} is before enrollment on {_d(state.enrolled_on)}"))
    treated = _latest_treatment_date(state)
    if treated is not None and treated >= cmd.died_on:
        found.append(
            Violation("TREAT-WINDOW", f"patient {pid} has treatment recorded on {_d(treated)}; a death on {_d(cmd.died_on)} must come after it")
        )
    later = max(
        [d for d in (state.treatment_ended_on,) if d is not None]
        + [c.contacted_on for c in state.contacts]
        + [t.onset_on for t in state.toxicities]
        + [t.resolved_on for t in state.toxicities if t.resolved_on is not None]
        + [a.assessed_on for a in state.assessments],
        default=None,
    )
    if later is not None and later > cmd.died_on:
        found.append(
            Violation(
                "DEATH-FINAL",
                f"patient {pid} has entries dated up to {_d(later)}, after the proposed death on {_d(cmd.died_on)}",
            )
        )
    return found


def check_bosutinib_dose(state: PatientState, cmd: RecordBosutinibDose, protocol: Protocol) -> list[Violation]:
    pid, day = state.patient_id, cmd.taken_on
    found = check_treatment_window(state, day, "a bosutinib dose")
    cycle = state.cycle_on(day)
    if cycle is None:
        days = f"days 1-{protocol.bosutinib_days}"
        found.append(Violation("BOS-DAILY", f"no cycle of patient {pid} had started by {_d(day)}; bosutinib is taken on {days} of a started cycle"))
    else:
        cycle_day = (day - cycle.started_on).days + 1
        if cycle_day > protocol.bosutinib_days:
            found.append(
                Violation(
                    "BOS-DAILY",
                    f"{_d(day)} is day {cycle_day} of cycle {cycle.number} of patient {pid}; bosutinib is taken on days 1-{protocol.bosutinib_days} only",
                )
            )
    if any(d[0] == day for d in state.doses):
        found.append(Violation("BOS-DAILY", f"patient {pid} already has a bosutinib dose recorded on {_d(day)}; at most one dose per day"))
    prescribed = state.prescribed_dose_on(day)
    if prescribed is not None and cmd.dose_mg != prescribed:
        found.append(Violation("BOS-DOSE", f"patient {pid}'s prescribed bosutinib dose on {_d(day)} is {prescribed} mg, not {cmd.dose_mg} mg"))
    return found


def check_dose_modification(state: PatientState, cmd: ModifyBosutinibDose, protocol: Protocol) -> list[Violation]:
    pid, day = state.patient_id, cmd.effective_on
    found = check_treatment_window(state, day, "a dose modification")
    current = state.prescribed_dose_on(day)
    step = protocol.dose_reduction_step_mg
    if current is not None and (cmd.dose_mg >= current or (current - cmd.dose_mg) % step != 0 or cmd.dose_mg <= 0):
        found.append(
            Violation(
                "BOS-DOSE",
                f"patient {pid}'s bosutinib dose on {_d(day)} is {current} mg; a modification lowers it in "
                f"steps of {step} mg, so {cmd.dose_mg} mg is not allowed",
            )
        )
    return found


def scheduled_ino_day(cycle_day: int, protocol: Protocol) -> int | None:
    """The InO day (1, 8 or 15) that ``cycle_day`` falls on, within ± ino_window_days."""
    near = [s for s in protocol.ino_days if abs(cycle_day - s) <= protocol.ino_window_days]
    return min(near, key=lambda s: abs(cycle_day - s)) if near else None


def expected_ino_dose(scheduled_day: int, day1_only: bool, protocol: Protocol) -> float:
    if day1_only:
        return protocol.responder_ino_mg_m2
    return protocol.ino_day1_mg_m2 if scheduled_day == 1 else protocol.ino_later_days_mg_m2


def check_ino_infusion(state: PatientState, cmd: RecordInoInfusion, protocol: Protocol) -> list[Violation]:
    pid, day = state.patient_id, cmd.given_on
    found = check_treatment_window(state, day, "an InO infusion")
    cycle = state.cycle_on(day)
    if cycle is None:
        found.append(Violation("INO-DAYS", f"no cycle of patient {pid} had started by {_d(day)}; InO is given on cycle days {_days(protocol)}"))
        return found
    cycle_day = (day - cycle.started_on).days + 1
    scheduled = scheduled_ino_day(cycle_day, protocol) if cycle_day <= protocol.cycle_days else None
    if scheduled is None:
        where = f"day {cycle_day} of cycle {cycle.number} of patient {pid}"
        found.append(Violation("INO-DAYS", f"{_d(day)} is {where}; InO is given on days {_days(protocol)} only"))
        return found
    day1_only = state.day1_only(cycle)
    if day1_only and scheduled != 1:
        responded = state.first_response_on
        found.append(
            Violation(
                "INO-DAY1-ONLY",
                f"patient {pid} responded on {_d(responded) if responded else '?'}; cycle {cycle.number} started after it, "
                f"so InO is given on day 1 only, not day {scheduled}",
            )
        )
    found.extend(_check_ino_once_and_dose(state, cycle, scheduled, day1_only, cmd, protocol))
    return found


def _check_ino_once_and_dose(
    state: PatientState, cycle: Cycle, scheduled: int, day1_only: bool, cmd: RecordInoInfusion, protocol: Protocol
) -> list[Violation]:
    pid = state.patient_id
    found: list[Violation] = []
    given = state.infusions_in(cycle)
    if any(scheduled_ino_day((i.given_on - cycle.started_on).days + 1, protocol) == scheduled for i in given):
        found.append(Violation("INO-ONCE", f"patient {pid} already had the day-{scheduled} InO infusion of cycle {cycle.number}"))
    expected = expected_ino_dose(scheduled, day1_only, protocol)
    if abs(cmd.dose_mg_m2 - expected) > EPSILON:
        schedule = "a day-1-only cycle" if day1_only else f"day {scheduled}"
        found.append(Violation("INO-DOSE", f"the InO dose on {schedule} is {expected:g} mg/m², not {cmd.dose_mg_m2:g} mg/m²"))
    total = sum(i.dose_mg_m2 for i in given) + cmd.dose_mg_m2
    if total > protocol.ino_max_per_cycle_mg_m2 + EPSILON:
        found.append(
            Violation(
                "INO-DOSE",
                f"patient {pid} would receive {total:g} mg/m² of InO in cycle {cycle.number}; "
                f"at most {protocol.ino_max_per_cycle_mg_m2:g} mg/m² per cycle",
            )
        )
    return found


def _days(protocol: Protocol) -> str:
    days = ", ".join(str(d) for d in protocol.ino_days)
    if protocol.ino_window_days:
        days += f" (± {protocol.ino_window_days} days)"
    return days
