"""CYCLE-CAP, CYCLE-ORDER, BOS-DAILY, BOS-DOSE and TREAT-WINDOW (protocol.md), without a database.

The patient is enrolled on 2016-02-01 and, unless a test says otherwise, starts cycle 1 on
2016-02-02; day *d* of a cycle is ``started_on + d - 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.commands import EndTreatment, ModifyBosutinibDose, RecordBosutinibDose, RecordInoInfusion, StartCycle
from ledger.domain.values import EndReason
from ledger.errors import Violation
from ledger.policies.treatment import (
    check_bosutinib_dose,
    check_dose_modification,
    check_end_treatment,
    check_ino_infusion,
    check_start_cycle,
)
from ledger.protocol import load_protocol
from ledger.state import PatientState
from tests.builders import Course

PROTOCOL = load_protocol()
ENROLLED = date(2016, 2, 1)
C1 = date(2016, 2, 2)


def day(n: int, start: date = C1) -> date:
    """Day ``n`` of the cycle that started on ``start``."""
    return start + timedelta(days=n - 1)


def enrolled(dose_level_mg: int = 300) -> Course:
    return Course.enrolled("P001", on=ENROLLED.isoformat(), dose_level_mg=dose_level_mg)


def with_cycles(count: int, gap_days: int = PROTOCOL.cycle_days) -> Course:
    """Enrolled, with cycles 1..count started every ``gap_days`` from C1."""
    course = enrolled()
    for n in range(1, count + 1):
        course.cycle(n, (C1 + timedelta(days=(n - 1) * gap_days)).isoformat())
    return course


def start(cycle: int, on: date) -> StartCycle:
    return StartCycle(patient_id="P001", cycle=cycle, started_on=on)


def dose(on: date, mg: int = 300) -> RecordBosutinibDose:
    return RecordBosutinibDose(patient_id="P001", taken_on=on, dose_mg=mg)


def modify(on: date, mg: int) -> ModifyBosutinibDose:
    return ModifyBosutinibDose(patient_id="P001", effective_on=on, dose_mg=mg)


def end(on: date) -> EndTreatment:
    return EndTreatment(patient_id="P001", ended_on=on, end_reason=EndReason.COMPLETED)


def rule_ids(found: list[Violation]) -> list[str]:
    return [v.rule_id for v in found]


# --- CYCLE-CAP ----------------------------------------------------------------------------


def test_the_sixth_cycle_starts() -> None:
    state = with_cycles(5).state()

    assert check_start_cycle(state, start(6, C1 + timedelta(days=5 * 28)), PROTOCOL) == []


def test_a_seventh_cycle_is_refused_by_the_six_cycle_cap() -> None:
    state = with_cycles(6).state()

    found = check_start_cycle(state, start(7, C1 + timedelta(days=6 * 28)), PROTOCOL)

    assert rule_ids(found) == ["CYCLE-CAP"]
    assert "at most 6 cycles" in found[0].message


@given(st.integers(min_value=0, max_value=365))
def test_a_seventh_cycle_is_refused_however_long_it_was_delayed(delay_days: int) -> None:
    state = with_cycles(6).state()

    found = check_start_cycle(state, start(7, C1 + timedelta(days=6 * 28 + delay_days)), PROTOCOL)

    assert rule_ids(found) == ["CYCLE-CAP"]


# --- CYCLE-ORDER --------------------------------------------------------------------------


def test_cycle_one_may_start_on_the_day_of_enrollment() -> None:
    assert check_start_cycle(enrolled().state(), start(1, ENROLLED), PROTOCOL) == []


def test_a_course_cannot_begin_with_cycle_two() -> None:
    found = check_start_cycle(enrolled().state(), start(2, C1), PROTOCOL)

    assert rule_ids(found) == ["CYCLE-ORDER"]
    assert "cycle 1 of patient P001 has not started" in found[0].message


def test_a_cycle_number_cannot_be_skipped() -> None:
    found = check_start_cycle(with_cycles(1).state(), start(3, day(57)), PROTOCOL)

    assert rule_ids(found) == ["CYCLE-ORDER"]
    assert "cycle 2 of patient P001 has not started" in found[0].message


def test_a_cycle_that_already_started_cannot_start_again() -> None:
    found = check_start_cycle(with_cycles(2).state(), start(2, day(60)), PROTOCOL)

    assert rule_ids(found) == ["CYCLE-ORDER"]
    assert "already started on 2016-03-01" in found[0].message


def test_the_next_cycle_starts_on_day_29_of_the_previous_one() -> None:
    assert check_start_cycle(with_cycles(1).state(), start(2, day(29)), PROTOCOL) == []


@given(st.integers(min_value=1, max_value=28))
def test_the_next_cycle_is_refused_on_any_day_up_to_day_28_of_the_previous_one(cycle_day: int) -> None:
    found = check_start_cycle(with_cycles(1).state(), start(2, day(cycle_day)), PROTOCOL)

    assert rule_ids(found) == ["CYCLE-ORDER"]
    assert "cannot start before 2016-03-01 (day 29 of cycle 1" in found[0].message


@given(st.integers(min_value=29, max_value=400))
def test_a_delayed_cycle_may_start_on_any_day_after_day_28(cycle_day: int) -> None:
    assert check_start_cycle(with_cycles(1).state(), start(2, day(cycle_day)), PROTOCOL) == []


# --- BOS-DAILY ----------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=28))
def test_bosutinib_may_be_taken_on_each_day_1_to_28_of_a_started_cycle(cycle_day: int) -> None:
    assert check_bosutinib_dose(with_cycles(1).state(), dose(day(cycle_day)), PROTOCOL) == []


@given(st.integers(min_value=29, max_value=120))
def test_bosutinib_after_day_28_of_a_cycle_with_no_next_cycle_is_refused(cycle_day: int) -> None:
    found = check_bosutinib_dose(with_cycles(1).state(), dose(day(cycle_day)), PROTOCOL)

    assert rule_ids(found) == ["BOS-DAILY"]
    assert f"day {cycle_day} of cycle 1" in found[0].message


def test_bosutinib_on_day_1_of_a_delayed_next_cycle_counts_in_that_cycle() -> None:
    course = with_cycles(1)
    course.cycle(2, day(40).isoformat())

    assert check_bosutinib_dose(course.state(), dose(day(40)), PROTOCOL) == []


def test_bosutinib_before_the_first_cycle_started_is_refused() -> None:
    found = check_bosutinib_dose(with_cycles(1).state(), dose(ENROLLED), PROTOCOL)

    assert rule_ids(found) == ["BOS-DAILY"]
    assert "no cycle of patient P001 had started by 2016-02-01" in found[0].message


def test_a_second_bosutinib_dose_on_the_same_day_is_refused() -> None:
    course = with_cycles(1)
    course.dose(day(3).isoformat(), 300)

    found = check_bosutinib_dose(course.state(), dose(day(3)), PROTOCOL)

    assert rule_ids(found) == ["BOS-DAILY"]
    assert "at most one dose per day" in found[0].message


def test_a_dose_the_day_after_a_recorded_dose_is_allowed() -> None:
    course = with_cycles(1)
    course.dose(day(3).isoformat(), 300)

    assert check_bosutinib_dose(course.state(), dose(day(4)), PROTOCOL) == []


# --- BOS-DOSE -----------------------------------------------------------------------------


@pytest.mark.parametrize("mg", [200, 400, 500])
def test_a_dose_other_than_the_patients_dose_level_is_refused(mg: int) -> None:
    found = check_bosutinib_dose(with_cycles(1).state(), dose(day(2), mg), PROTOCOL)

    assert rule_ids(found) == ["BOS-DOSE"]
    assert f"prescribed bosutinib dose on 2016-02-03 is 300 mg, not {mg} mg" in found[0].message


def test_from_its_effective_date_the_modified_dose_is_the_prescribed_dose() -> None:
    course = with_cycles(1)
    course.modify(day(10).isoformat(), 200)

    assert check_bosutinib_dose(course.state(), dose(day(10), 200), PROTOCOL) == []


def test_the_dose_before_a_modification_is_refused_from_its_effective_date() -> None:
    course = with_cycles(1)
    course.modify(day(10).isoformat(), 200)

    found = check_bosutinib_dose(course.state(), dose(day(10), 300), PROTOCOL)

    assert rule_ids(found) == ["BOS-DOSE"]


def test_a_back_dated_dose_before_a_modification_keeps_the_level_dose() -> None:
    course = with_cycles(1)
    course.modify(day(10).isoformat(), 200)

    assert check_bosutinib_dose(course.state(), dose(day(9), 300), PROTOCOL) == []


@pytest.mark.parametrize("mg", [200, 100])
def test_a_modification_down_in_100_mg_steps_is_allowed(mg: int) -> None:
    assert check_dose_modification(with_cycles(1).state(), modify(day(10), mg), PROTOCOL) == []


@pytest.mark.parametrize("mg", [250, 300, 400, 0])
def test_a_modification_that_is_not_a_lower_100_mg_step_is_refused(mg: int) -> None:
    found = check_dose_modification(with_cycles(1).state(), modify(day(10), mg), PROTOCOL)

    assert rule_ids(found) == ["BOS-DOSE"]
    assert f"so {mg} mg is not allowed" in found[0].message


def test_a_second_modification_is_measured_from_the_first_one() -> None:
    course = with_cycles(1)
    course.modify(day(10).isoformat(), 200)

    found = check_dose_modification(course.state(), modify(day(12), 200), PROTOCOL)

    assert rule_ids(found) == ["BOS-DOSE"]
    assert "is 200 mg" in found[0].message


# --- TREAT-WINDOW -------------------------------------------------------------------------


def test_a_cycle_dated_before_enrollment_is_refused() -> None:
    found = check_start_cycle(enrolled().state(), start(1, ENROLLED - timedelta(days=1)), PROTOCOL)

    assert rule_ids(found) == ["TREAT-WINDOW"]
    assert "before patient P001 was enrolled on 2016-02-01" in found[0].message


TreatmentCheck = Callable[[PatientState, date], list[Violation]]
TREATMENT_ON: dict[str, TreatmentCheck] = {
    "bosutinib dose": lambda s, on: check_bosutinib_dose(s, dose(on), PROTOCOL),
    "InO infusion": lambda s, on: check_ino_infusion(s, RecordInoInfusion(patient_id="P001", given_on=on, dose_mg_m2=0.5), PROTOCOL),
    "dose modification": lambda s, on: check_dose_modification(s, modify(on, 200), PROTOCOL),
}


@pytest.mark.parametrize("what", sorted(TREATMENT_ON))
def test_treatment_dated_after_the_end_of_treatment_is_refused(what: str) -> None:
    course = with_cycles(1)
    course.end(day(14).isoformat())

    found = TREATMENT_ON[what](course.state(), day(15))

    assert rule_ids(found) == ["TREAT-WINDOW"]
    assert "ended on 2016-02-15" in found[0].message


def test_a_cycle_dated_after_the_end_of_treatment_is_refused() -> None:
    course = with_cycles(1)
    course.end(day(14).isoformat())

    assert rule_ids(check_start_cycle(course.state(), start(2, day(29)), PROTOCOL)) == ["TREAT-WINDOW"]


@pytest.mark.parametrize("what", sorted(TREATMENT_ON))
def test_treatment_dated_on_the_end_of_treatment_is_allowed(what: str) -> None:
    course = with_cycles(1)
    course.end(day(15).isoformat())

    assert TREATMENT_ON[what](course.state(), day(15)) == []


def test_a_dose_dated_before_the_end_of_treatment_and_entered_after_it_is_allowed() -> None:
    course = with_cycles(1)
    course.end(day(20).isoformat())

    assert check_bosutinib_dose(course.state(), dose(day(12)), PROTOCOL) == []


def test_a_dose_on_the_day_of_death_is_refused() -> None:
    course = with_cycles(1)
    course.death(day(10).isoformat())

    found = check_bosutinib_dose(course.state(), dose(day(10)), PROTOCOL)

    assert rule_ids(found) == ["TREAT-WINDOW"]
    assert "must be dated before the death" in found[0].message


def test_a_dose_on_the_day_before_death_is_allowed() -> None:
    course = with_cycles(1)
    course.death(day(10).isoformat())

    assert check_bosutinib_dose(course.state(), dose(day(9)), PROTOCOL) == []


def test_ending_treatment_before_treatment_already_recorded_is_refused() -> None:
    course = with_cycles(1)
    course.dose(day(6).isoformat())

    found = check_end_treatment(course.state(), end(day(5)))

    assert rule_ids(found) == ["TREAT-WINDOW"]
    assert "has treatment recorded on 2016-02-07" in found[0].message


def test_ending_treatment_on_the_day_of_the_last_dose_is_allowed() -> None:
    course = with_cycles(1)
    course.dose(day(6).isoformat())

    assert check_end_treatment(course.state(), end(day(6))) == []


def test_ending_treatment_a_second_time_is_refused() -> None:
    course = with_cycles(1)
    course.end(day(6).isoformat())

    found = check_end_treatment(course.state(), end(day(7)))

    assert rule_ids(found) == ["TREAT-WINDOW"]
    assert "already ended on 2016-02-07" in found[0].message


def test_ending_treatment_before_enrollment_is_refused() -> None:
    found = check_end_treatment(enrolled().state(), end(ENROLLED - timedelta(days=1)))

    assert rule_ids(found) == ["TREAT-WINDOW"]
