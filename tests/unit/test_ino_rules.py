"""INO-DAYS, INO-DAY1-ONLY, INO-DOSE and INO-ONCE (protocol.md), without a database.

Cycle 1 starts on 2016-02-02 (C1), cycle 2 on its day 29, 2016-03-01 (C2), cycle 3 on day 29 of
cycle 2, 2016-03-29 (C3).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.commands import RecordInoInfusion
from ledger.errors import Violation
from ledger.policies.treatment import check_ino_infusion
from ledger.protocol import load_protocol
from tests.builders import Course

PROTOCOL = load_protocol()
C1 = date(2016, 2, 2)
C2 = C1 + timedelta(days=28)
C3 = C2 + timedelta(days=28)
DAY1, LATER, RESPONDER = PROTOCOL.ino_day1_mg_m2, PROTOCOL.ino_later_days_mg_m2, PROTOCOL.responder_ino_mg_m2


def day(n: int, start: date = C1) -> date:
    return start + timedelta(days=n - 1)


def with_cycles(*starts: date) -> Course:
    course = Course.enrolled("P001", on="2016-02-01")
    for number, started_on in enumerate(starts, start=1):
        course.cycle(number, started_on.isoformat())
    return course


def infusion(on: date, mg_m2: float) -> RecordInoInfusion:
    return RecordInoInfusion(patient_id="P001", given_on=on, dose_mg_m2=mg_m2)


def rule_ids(found: list[Violation]) -> list[str]:
    return [v.rule_id for v in found]


def responded_in_cycle_two(response: str = "CR", cytogenetic: str | None = None, mrd: str | None = None) -> Course:
    """Three cycles; a response assessed on day 3 of cycle 2 (after it started, before cycle 3)."""
    course = with_cycles(C1, C2, C3)
    course.response(day(3, C2).isoformat(), response, cytogenetic, mrd)
    return course


# --- INO-DAYS -----------------------------------------------------------------------------


@pytest.mark.parametrize(("cycle_day", "mg_m2"), [(1, DAY1), (8, LATER), (15, LATER)])
def test_ino_is_allowed_on_days_1_8_and_15_of_a_cycle(cycle_day: int, mg_m2: float) -> None:
    assert check_ino_infusion(with_cycles(C1).state(), infusion(day(cycle_day), mg_m2), PROTOCOL) == []


@given(st.integers(min_value=1, max_value=28).filter(lambda n: n not in PROTOCOL.ino_days))
def test_ino_on_any_other_day_of_a_cycle_is_refused(cycle_day: int) -> None:
    found = check_ino_infusion(with_cycles(C1).state(), infusion(day(cycle_day), LATER), PROTOCOL)

    assert rule_ids(found) == ["INO-DAYS"]
    assert f"day {cycle_day} of cycle 1" in found[0].message


def test_ino_on_day_29_of_a_delayed_cycle_is_refused() -> None:
    found = check_ino_infusion(with_cycles(C1).state(), infusion(day(29), DAY1), PROTOCOL)

    assert rule_ids(found) == ["INO-DAYS"]


def test_ino_before_the_first_cycle_is_refused() -> None:
    found = check_ino_infusion(with_cycles(C1).state(), infusion(C1 - timedelta(days=1), DAY1), PROTOCOL)

    assert rule_ids(found) == ["INO-DAYS"]
    assert "no cycle of patient P001 had started" in found[0].message


@pytest.mark.parametrize("cycle_day", [2, 7, 9, 14, 16])
def test_the_ino_window_parameter_allows_days_next_to_the_scheduled_ones(cycle_day: int) -> None:
    widened = replace(PROTOCOL, ino_window_days=1)
    mg_m2 = DAY1 if cycle_day == 2 else LATER

    assert check_ino_infusion(with_cycles(C1).state(), infusion(day(cycle_day), mg_m2), widened) == []


@pytest.mark.parametrize("cycle_day", [3, 6, 10, 13, 17])
def test_the_ino_window_parameter_still_refuses_days_outside_it(cycle_day: int) -> None:
    widened = replace(PROTOCOL, ino_window_days=1)

    assert rule_ids(check_ino_infusion(with_cycles(C1).state(), infusion(day(cycle_day), LATER), widened)) == ["INO-DAYS"]


# --- INO-DAY1-ONLY ------------------------------------------------------------------------


def test_ino_on_day_8_of_the_cycle_that_started_before_the_response_is_allowed() -> None:
    course = responded_in_cycle_two()
    course.ino(day(1, C2).isoformat(), DAY1)

    assert check_ino_infusion(course.state(), infusion(day(8, C2), LATER), PROTOCOL) == []


def test_ino_on_day_8_of_the_next_cycle_after_the_response_is_refused() -> None:
    # at the responder dose, so that only the day is wrong
    found = check_ino_infusion(responded_in_cycle_two().state(), infusion(day(8, C3), RESPONDER), PROTOCOL)

    assert rule_ids(found) == ["INO-DAY1-ONLY"]
    assert "responded on 2016-03-03; cycle 3 started after it, so InO is given on day 1 only, not day 8" in found[0].message


def test_ino_on_day_15_of_a_cycle_after_the_response_is_refused() -> None:
    found = check_ino_infusion(responded_in_cycle_two().state(), infusion(day(15, C3), RESPONDER), PROTOCOL)

    assert rule_ids(found) == ["INO-DAY1-ONLY"]


def test_ino_on_day_1_of_a_cycle_after_the_response_is_allowed_at_the_responder_dose() -> None:
    assert check_ino_infusion(responded_in_cycle_two().state(), infusion(day(1, C3), RESPONDER), PROTOCOL) == []


def test_ino_on_day_15_of_the_cycle_in_which_the_response_was_assessed_is_allowed() -> None:
    course = with_cycles(C1)
    course.response(day(10).isoformat(), "CR")

    assert check_ino_infusion(course.state(), infusion(day(15), LATER), PROTOCOL) == []


def test_a_cycle_starting_on_the_day_of_the_response_keeps_days_8_and_15() -> None:
    course = with_cycles(C1, C2)
    course.response(C2.isoformat(), "CR")

    assert check_ino_infusion(course.state(), infusion(day(8, C2), LATER), PROTOCOL) == []


@pytest.mark.parametrize(
    ("response", "cytogenetic", "mrd"),
    [("CR", None, None), ("CRi", None, None), ("PR", "CCyR", None), ("NR", None, "NEGATIVE")],
)
def test_cr_cri_ccyr_or_mrd_negativity_each_make_later_cycles_day_1_only(response: str, cytogenetic: str | None, mrd: str | None) -> None:
    course = responded_in_cycle_two(response, cytogenetic, mrd)

    assert rule_ids(check_ino_infusion(course.state(), infusion(day(8, C3), RESPONDER), PROTOCOL)) == ["INO-DAY1-ONLY"]


@pytest.mark.parametrize(
    ("response", "cytogenetic", "mrd"),
    [("CRp", None, None), ("MLFS", None, None), ("PR", "PCyR", "POSITIVE"), ("NR", "NOT_DONE", "NOT_DONE")],
)
def test_a_response_short_of_cr_cri_ccyr_or_mrd_negativity_keeps_days_8_and_15(response: str, cytogenetic: str | None, mrd: str | None) -> None:
    course = responded_in_cycle_two(response, cytogenetic, mrd)

    assert check_ino_infusion(course.state(), infusion(day(8, C3), LATER), PROTOCOL) == []


def test_a_voided_response_no_longer_makes_later_cycles_day_1_only() -> None:
    course = with_cycles(C1, C2, C3)
    response = course.response(day(3, C2).isoformat(), "CR")
    course.void(response, day(5, C3).isoformat())

    assert check_ino_infusion(course.state(), infusion(day(8, C3), LATER), PROTOCOL) == []


# --- INO-DOSE -----------------------------------------------------------------------------


def test_ino_on_day_1_of_a_regular_cycle_at_another_dose_than_0_8_is_refused() -> None:
    found = check_ino_infusion(with_cycles(C1).state(), infusion(day(1), LATER), PROTOCOL)

    assert rule_ids(found) == ["INO-DOSE"]
    assert "the InO dose on day 1 is 0.8 mg/m², not 0.5 mg/m²" in found[0].message


@pytest.mark.parametrize("cycle_day", [8, 15])
def test_ino_on_days_8_and_15_at_another_dose_than_0_5_is_refused(cycle_day: int) -> None:
    found = check_ino_infusion(with_cycles(C1).state(), infusion(day(cycle_day), DAY1), PROTOCOL)

    assert rule_ids(found) == ["INO-DOSE"]
    assert f"on day {cycle_day} is 0.5 mg/m²" in found[0].message


def test_ino_on_day_1_of_a_day_1_only_cycle_at_the_cycle_one_dose_is_refused() -> None:
    found = check_ino_infusion(responded_in_cycle_two().state(), infusion(day(1, C3), DAY1), PROTOCOL)

    assert rule_ids(found) == ["INO-DOSE"]
    assert "the InO dose on a day-1-only cycle is 1 mg/m²" in found[0].message


def test_a_full_cycle_of_1_8_mg_m2_is_allowed() -> None:
    course = with_cycles(C1)
    course.ino(day(1).isoformat(), DAY1)
    course.ino(day(8).isoformat(), LATER)

    assert check_ino_infusion(course.state(), infusion(day(15), LATER), PROTOCOL) == []


def test_an_infusion_taking_a_cycle_above_1_8_mg_m2_is_refused() -> None:
    course = with_cycles(C1)
    course.ino(day(1).isoformat(), RESPONDER)  # recorded earlier as an acknowledged deviation
    course.ino(day(8).isoformat(), LATER)

    found = check_ino_infusion(course.state(), infusion(day(15), LATER), PROTOCOL)

    assert rule_ids(found) == ["INO-DOSE"]
    assert "would receive 2 mg/m² of InO in cycle 1; at most 1.8 mg/m² per cycle" in found[0].message


def test_the_per_cycle_maximum_starts_afresh_in_the_next_cycle() -> None:
    course = with_cycles(C1, C2)
    for cycle_day, mg_m2 in ((1, DAY1), (8, LATER), (15, LATER)):
        course.ino(day(cycle_day).isoformat(), mg_m2)

    assert check_ino_infusion(course.state(), infusion(day(1, C2), DAY1), PROTOCOL) == []


# --- INO-ONCE -----------------------------------------------------------------------------


def test_a_second_infusion_on_the_same_scheduled_day_is_refused() -> None:
    course = with_cycles(C1)
    course.ino(day(8).isoformat(), LATER)

    found = check_ino_infusion(course.state(), infusion(day(8), LATER), PROTOCOL)

    assert rule_ids(found) == ["INO-ONCE"]
    assert "already had the day-8 InO infusion of cycle 1" in found[0].message


def test_an_infusion_on_the_next_scheduled_day_is_allowed() -> None:
    course = with_cycles(C1)
    course.ino(day(8).isoformat(), LATER)

    assert check_ino_infusion(course.state(), infusion(day(15), LATER), PROTOCOL) == []


def test_two_infusions_within_one_windowed_scheduled_day_are_refused() -> None:
    widened = replace(PROTOCOL, ino_window_days=1)
    course = with_cycles(C1)
    course.ino(day(7).isoformat(), LATER)

    assert rule_ids(check_ino_infusion(course.state(), infusion(day(9), LATER), widened)) == ["INO-ONCE"]


def test_day_1_of_the_next_cycle_is_a_new_scheduled_day() -> None:
    course = with_cycles(C1, C2)
    course.ino(day(1).isoformat(), DAY1)

    assert check_ino_infusion(course.state(), infusion(day(1, C2), DAY1), PROTOCOL) == []
