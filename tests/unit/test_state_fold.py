"""The bitemporal patient fold (ledger.state): corrections, voids, transaction time and valid time.

``as_of`` is transaction time (when an entry was recorded; the builder's clock ticks one second
per entry), ``valid_on`` is valid time (the clinical date an entry is about). Cycle 1 starts on
2016-02-02 (C1).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from ledger.commands import RecordBosutinibDose
from ledger.policies.treatment import check_bosutinib_dose
from ledger.protocol import load_protocol
from ledger.state import Toxicity, effective_entries
from tests.builders import Course

PROTOCOL = load_protocol()
C1 = date(2016, 2, 2)


def day(n: int) -> str:
    """Day ``n`` of cycle 1, as the builder takes dates."""
    return (C1 + timedelta(days=n - 1)).isoformat()


def in_cycle_one() -> Course:
    course = Course.enrolled("P001", on="2016-02-01")
    course.cycle(1, day(1))
    return course


def toxicity(course: Course, entry_id: str, as_of: datetime | None = None, valid_on: str | None = None) -> Toxicity | None:
    return course.state(as_of=as_of, valid_on=valid_on).toxicity(entry_id)


# --- corrections --------------------------------------------------------------------------


def test_correcting_a_toxicity_grade_to_3_makes_it_a_dlt() -> None:
    course = in_cycle_one()
    rash = course.toxicity(day(8), grade=2)
    course.correct(rash, day(40), grade=3)

    assert course.state().dlt


def test_correcting_a_toxicity_grade_to_2_removes_its_dlt() -> None:
    course = in_cycle_one()
    rash = course.toxicity(day(8), grade=3)
    course.correct(rash, day(40), grade=2)

    assert not course.state().dlt


def test_a_correction_shows_at_the_valid_time_of_the_entry_it_amends() -> None:
    course = in_cycle_one()
    rash = course.toxicity(day(8), grade=2)
    course.correct(rash, day(40), grade=3)

    found = toxicity(course, rash, valid_on=day(8))

    assert found is not None and (found.grade, found.dlt) == (3, True)


def test_before_a_correction_was_recorded_the_original_value_shows() -> None:
    course = in_cycle_one()
    rash = course.toxicity(day(8), grade=2)
    before = course.clock
    course.correct(rash, day(40), grade=3)

    found = toxicity(course, rash, as_of=before)

    assert found is not None and (found.grade, found.dlt) == (2, False)


def test_correcting_the_onset_after_the_dlt_window_removes_the_dlt() -> None:
    course = in_cycle_one()
    rash = course.toxicity(day(8), grade=3)
    course.correct(rash, day(40), onset_on=C1 + timedelta(days=35))

    found = toxicity(course, rash)

    assert found is not None and (found.dose_limiting, found.dlt) == (True, False)


def test_a_corrected_onset_moves_the_entry_in_valid_time() -> None:
    course = in_cycle_one()
    rash = course.toxicity(day(8), grade=3)
    course.correct(rash, day(40), onset_on=C1 + timedelta(days=35))

    assert toxicity(course, rash, valid_on=day(8)) is None


def test_the_latest_correction_of_a_field_wins() -> None:
    course = in_cycle_one()
    rash = course.toxicity(day(8), grade=2)
    course.correct(rash, day(40), grade=4)
    course.correct(rash, day(41), grade=3)

    found = toxicity(course, rash)

    assert found is not None and found.grade == 3


def test_a_corrected_entry_stays_in_the_ledger_as_it_was_recorded() -> None:
    course = in_cycle_one()
    rash = course.toxicity(day(8), grade=2)
    course.correct(rash, day(40), grade=3)

    original = course.patient.entry(rash)

    assert original is not None and original.data["grade"] == 2


# --- voids --------------------------------------------------------------------------------


def test_a_voided_entry_is_removed_from_the_state() -> None:
    course = in_cycle_one()
    second = course.cycle(2, day(29))
    course.void(second, day(30))

    assert [c.number for c in course.state().cycles] == [1]


def test_a_voided_toxicity_no_longer_counts_as_a_dlt() -> None:
    course = in_cycle_one()
    rash = course.toxicity(day(8), grade=3)
    course.void(rash, day(40))

    assert not course.state().dlt


def test_before_a_void_was_recorded_the_entry_still_shows() -> None:
    course = in_cycle_one()
    rash = course.toxicity(day(8), grade=3)
    before = course.clock
    course.void(rash, day(40))

    assert course.state(as_of=before).dlt


def test_the_effective_entries_leave_out_the_voided_one_and_the_amendments() -> None:
    course = in_cycle_one()
    rash = course.toxicity(day(8), grade=3)
    course.void(rash, day(40))

    assert [e.kind for e in effective_entries(course.patient.entries)] == ["PatientEnrolled", "CycleStarted"]


def test_a_voided_death_no_longer_refuses_later_treatment() -> None:
    course = in_cycle_one()
    died = course.death(day(10))
    course.void(died, day(12))

    found = check_bosutinib_dose(course.state(), RecordBosutinibDose(patient_id="P001", taken_on=C1 + timedelta(days=10), dose_mg=300), PROTOCOL)

    assert found == []


# --- transaction time and valid time ------------------------------------------------------


def test_as_of_hides_entries_recorded_later() -> None:
    course = in_cycle_one()
    before = course.clock
    course.dose(day(1))

    assert (course.state(as_of=before).doses, len(course.state().doses)) == ([], 1)


def test_valid_on_hides_entries_dated_later() -> None:
    course = in_cycle_one()
    course.cycle(2, day(29))

    assert [c.number for c in course.state(valid_on=day(28)).cycles] == [1]


def test_valid_on_before_enrollment_shows_no_enrolled_patient() -> None:
    assert not in_cycle_one().state(valid_on="2016-01-31").enrolled


def back_dated_rash() -> tuple[Course, str, datetime]:
    """A rash with onset on day 8, recorded after facts dated up to day 30; and the time just before."""
    course = in_cycle_one()
    for n in range(1, 29):
        course.dose(day(n))
    course.cycle(2, day(29))
    course.dose(day(30))
    before = course.clock
    rash = course.toxicity(day(8), grade=3)
    return course, rash, before


def test_a_back_dated_toxicity_shows_at_its_onset_date_in_valid_time() -> None:
    course, rash, _ = back_dated_rash()

    found = toxicity(course, rash, valid_on=day(8))

    assert found is not None and found.dlt


def test_a_back_dated_toxicity_is_hidden_the_day_before_its_onset_in_valid_time() -> None:
    course, rash, _ = back_dated_rash()

    assert toxicity(course, rash, valid_on=day(7)) is None


def test_a_back_dated_toxicity_is_hidden_before_its_recording_in_transaction_time() -> None:
    course, rash, before = back_dated_rash()

    assert toxicity(course, rash, as_of=before, valid_on=day(30)) is None


# --- order of the fold --------------------------------------------------------------------


def test_dose_modifications_apply_in_clinical_order_whatever_their_recording_order() -> None:
    course = in_cycle_one()
    course.modify(day(20), 100)
    course.modify(day(10), 200)  # back-dated, recorded second
    state = course.state()

    assert (state.prescribed_dose_on(C1 + timedelta(days=14)), state.prescribed_dose_on(C1 + timedelta(days=24))) == (200, 100)


def test_the_first_response_is_the_earliest_qualifying_assessment() -> None:
    course = in_cycle_one()
    course.response(day(50), "CR")
    course.response(day(20), "PR")
    course.response(day(40), "CRi")

    assert course.state().first_response_on == C1 + timedelta(days=39)
