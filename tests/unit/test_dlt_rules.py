"""DLT-WINDOW (protocol.md): which toxicities are dose-limiting and which count for escalation.

Cycle 1 starts on 2016-02-02 (C1); its DLT window is days 1-28, 2016-02-02 to 2016-02-29.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.policies.dlt import in_dlt_window, is_dose_limiting
from ledger.protocol import load_protocol
from ledger.state import DltEvaluation, dlt_evaluation
from tests.builders import Course

PROTOCOL = load_protocol()
C1 = date(2016, 2, 2)
RELATED = ["POSSIBLE", "PROBABLE", "DEFINITE"]
UNRELATED = ["UNRELATED", "UNLIKELY"]


def day(n: int) -> date:
    return C1 + timedelta(days=n - 1)


def in_cycle_one() -> Course:
    course = Course.enrolled("P001", on="2016-02-01")
    course.cycle(1, C1.isoformat())
    return course


def limiting(grade: int = 3, attribution: str = "POSSIBLE", hematologic: bool = False, declared: bool | None = None) -> bool:
    return is_dose_limiting(grade=grade, attribution=attribution, hematologic=hematologic, declared=declared, protocol=PROTOCOL)


def evaluation(course: Course, on: date) -> DltEvaluation:
    return dlt_evaluation(course.state(valid_on=on.isoformat()), 300, on, PROTOCOL)


# --- what is dose-limiting ----------------------------------------------------------------


@given(st.integers(min_value=3, max_value=5), st.sampled_from(RELATED))
def test_a_grade_3_or_worse_non_hematologic_toxicity_at_least_possibly_related_is_dose_limiting(grade: int, attribution: str) -> None:
    assert limiting(grade, attribution)


@given(st.integers(min_value=1, max_value=2), st.sampled_from(RELATED))
def test_a_grade_1_or_2_toxicity_is_not_dose_limiting(grade: int, attribution: str) -> None:
    assert not limiting(grade, attribution)


@pytest.mark.parametrize("attribution", UNRELATED)
def test_a_toxicity_unrelated_or_unlikely_related_is_not_dose_limiting(attribution: str) -> None:
    assert not limiting(4, attribution)


def test_a_hematologic_toxicity_is_not_dose_limiting_by_definition() -> None:
    assert not limiting(4, "DEFINITE", hematologic=True)


def test_a_toxicity_the_investigator_declares_dose_limiting_is_dose_limiting_whatever_its_grade() -> None:
    assert limiting(1, "UNLIKELY", hematologic=True, declared=True)


# --- the window: onset in cycle 1, days 1-28 ----------------------------------------------


@given(st.integers(min_value=1, max_value=28))
def test_a_dose_limiting_toxicity_with_onset_on_days_1_to_28_of_cycle_1_counts(onset_day: int) -> None:
    course = in_cycle_one()
    toxicity = course.toxicity(day(onset_day).isoformat())

    found = course.state().toxicity(toxicity)

    assert found is not None and found.dlt


@given(st.integers(min_value=29, max_value=120))
def test_a_dose_limiting_toxicity_with_onset_after_day_28_of_cycle_1_does_not_count(onset_day: int) -> None:
    course = in_cycle_one()
    toxicity = course.toxicity(day(onset_day).isoformat())

    found = course.state().toxicity(toxicity)

    assert found is not None and found.dose_limiting and not found.dlt


def test_a_dose_limiting_toxicity_in_cycle_2_does_not_count() -> None:
    course = in_cycle_one()
    course.cycle(2, day(29).isoformat())
    course.toxicity(day(30).isoformat())

    assert not course.state().dlt


def test_a_dose_limiting_toxicity_before_cycle_1_started_does_not_count() -> None:
    course = Course.enrolled("P001", on="2016-02-01")
    course.toxicity("2016-02-01")
    course.cycle(1, C1.isoformat())

    assert not course.state().dlt


def test_no_onset_is_in_the_window_of_a_patient_who_has_not_started_cycle_1() -> None:
    assert not in_dlt_window(C1, None, PROTOCOL)


def test_the_window_length_is_read_from_the_protocol_definition() -> None:
    assert not in_dlt_window(day(22), C1, replace(PROTOCOL, dlt_window_days=21))


# --- evaluability for the 3+3 -------------------------------------------------------------


def test_a_patient_without_dlt_is_pending_on_the_last_day_of_the_window() -> None:
    ev = evaluation(in_cycle_one(), day(28))

    assert (ev.pending, ev.evaluable) == (True, False)


def test_a_patient_without_dlt_is_evaluable_the_day_after_the_window_closed() -> None:
    ev = evaluation(in_cycle_one(), day(29))

    assert (ev.pending, ev.evaluable, ev.dlt) == (False, True, False)


def test_a_patient_with_a_dlt_is_evaluable_before_the_window_closes() -> None:
    course = in_cycle_one()
    course.toxicity(day(8).isoformat())

    ev = evaluation(course, day(8))

    assert (ev.pending, ev.evaluable, ev.dlt) == (False, True, True)


def test_a_dlt_not_yet_in_valid_time_leaves_the_patient_pending() -> None:
    course = in_cycle_one()
    course.toxicity(day(8).isoformat())

    ev = evaluation(course, day(7))

    assert (ev.pending, ev.dlt) == (True, False)


def test_a_patient_who_left_before_the_window_closed_without_a_dlt_is_replaced() -> None:
    course = in_cycle_one()
    course.end(day(20).isoformat(), "WITHDRAWAL")

    ev = evaluation(course, day(29))

    assert (ev.replaced, ev.evaluable, ev.pending) == (True, False, False)


def test_a_patient_who_left_on_the_last_day_of_the_window_is_evaluable() -> None:
    course = in_cycle_one()
    course.end(day(28).isoformat())

    ev = evaluation(course, day(29))

    assert (ev.replaced, ev.evaluable) == (False, True)


def test_a_patient_who_has_not_started_cycle_1_is_pending() -> None:
    ev = evaluation(Course.enrolled("P001", on="2016-02-01"), day(60))

    assert (ev.pending, ev.evaluable) == (True, False)
