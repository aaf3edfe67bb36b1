"""FU-WINDOW and the window arithmetic of FU-SCHEDULE (protocol.md), without a database.

Treatment ends on 2016-08-01 (END); day *n* of follow-up is ``END + n``. Visits are due on days
84, 168, 252 and 336, each within ± 14 days.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.commands import RecordFollowUp
from ledger.domain.values import VitalStatus
from ledger.errors import Violation
from ledger.policies.follow_up import check_follow_up, follow_up_status, visits
from ledger.protocol import load_protocol
from tests.builders import Course

PROTOCOL = load_protocol()
END = date(2016, 8, 1)
DUE_DAYS = [84, 168, 252, 336]
TOLERANCE = PROTOCOL.follow_up_tolerance_days


def after_end(n: int) -> date:
    return END + timedelta(days=n)


def ended(on: date = END) -> Course:
    course = Course.enrolled("P001", on="2016-02-01")
    course.cycle(1, "2016-02-02")
    course.end(on.isoformat())
    return course


def contact(on: date) -> RecordFollowUp:
    return RecordFollowUp(patient_id="P001", contacted_on=on, vital_status=VitalStatus.ALIVE)


def rule_ids(found: list[Violation]) -> list[str]:
    return [v.rule_id for v in found]


# --- FU-WINDOW ----------------------------------------------------------------------------


def test_a_follow_up_on_day_365_after_the_end_of_treatment_is_allowed() -> None:
    assert check_follow_up(ended().state(), contact(after_end(365)), PROTOCOL) == []


def test_a_follow_up_on_day_366_after_the_end_of_treatment_is_refused() -> None:
    found = check_follow_up(ended().state(), contact(after_end(366)), PROTOCOL)

    assert rule_ids(found) == ["FU-WINDOW"]
    assert "day 366 after the end of treatment" in found[0].message
    assert "follow-up lasts 365 days (until 2017-08-01)" in found[0].message


@given(st.integers(min_value=1, max_value=365))
def test_a_follow_up_on_any_day_of_the_year_after_the_end_of_treatment_is_allowed(n: int) -> None:
    assert check_follow_up(ended().state(), contact(after_end(n)), PROTOCOL) == []


@given(st.integers(min_value=366, max_value=3650))
def test_a_follow_up_after_the_year_is_refused(n: int) -> None:
    assert rule_ids(check_follow_up(ended().state(), contact(after_end(n)), PROTOCOL)) == ["FU-WINDOW"]


def test_a_follow_up_on_the_day_treatment_ended_is_refused() -> None:
    found = check_follow_up(ended().state(), contact(END), PROTOCOL)

    assert rule_ids(found) == ["FU-WINDOW"]
    assert "after the end of treatment on 2016-08-01, not on 2016-08-01" in found[0].message


def test_a_follow_up_before_treatment_has_ended_is_refused() -> None:
    course = Course.enrolled("P001", on="2016-02-01")
    course.cycle(1, "2016-02-02")

    found = check_follow_up(course.state(), contact(date(2016, 3, 1)), PROTOCOL)

    assert rule_ids(found) == ["FU-WINDOW"]
    assert "has not ended" in found[0].message


# --- FU-SCHEDULE: window arithmetic -------------------------------------------------------


def test_visits_are_due_on_days_84_168_252_and_336_after_the_end_of_treatment() -> None:
    assert [(v.number, (v.due_on - END).days) for v in visits(END, PROTOCOL)] == list(zip([1, 2, 3, 4], DUE_DAYS, strict=True))


def test_each_visit_window_opens_14_days_before_and_closes_14_days_after_its_due_date() -> None:
    windows = [((v.opens_on - END).days, (v.closes_on - END).days) for v in visits(END, PROTOCOL)]

    assert windows == [(70, 98), (154, 182), (238, 266), (322, 350)]


def test_the_visit_tolerance_is_read_from_the_protocol_definition() -> None:
    first = visits(END, replace(PROTOCOL, follow_up_tolerance_days=7))[0]

    assert ((first.opens_on - END).days, (first.closes_on - END).days) == (77, 91)


@given(st.sampled_from(range(4)), st.integers(min_value=-TOLERANCE, max_value=TOLERANCE))
def test_a_contact_within_a_visit_window_attends_that_visit(index: int, offset: int) -> None:
    contacted = after_end(DUE_DAYS[index] + offset)

    status = follow_up_status(END, [contacted], after_end(400), PROTOCOL)

    assert [v.number for v in status.attended] == [index + 1]


@pytest.mark.parametrize("offset", [-TOLERANCE - 1, TOLERANCE + 1])
def test_a_contact_one_day_outside_a_visit_window_does_not_attend_it(offset: int) -> None:
    status = follow_up_status(END, [after_end(84 + offset)], after_end(400), PROTOCOL)

    assert status.attended == []


def test_a_visit_whose_window_closed_without_contact_is_missed() -> None:
    status = follow_up_status(END, [], after_end(99), PROTOCOL)

    assert [v.number for v in status.missed] == [1]


def test_a_visit_is_not_missed_on_the_last_day_of_its_window() -> None:
    status = follow_up_status(END, [], after_end(98), PROTOCOL)

    assert status.missed == []
    assert status.next_due is not None and status.next_due.number == 1


def test_the_next_visit_due_follows_the_attended_ones() -> None:
    status = follow_up_status(END, [after_end(85)], after_end(100), PROTOCOL)

    assert status.next_due is not None and status.next_due.number == 2


def test_every_visit_closed_without_contact_at_the_end_of_the_year_is_missed() -> None:
    status = follow_up_status(END, [after_end(170)], after_end(365), PROTOCOL)

    assert ([v.number for v in status.attended], [v.number for v in status.missed], status.next_due) == ([2], [1, 3, 4], None)
