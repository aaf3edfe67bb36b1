"""DEATH-FINAL (protocol.md): after a recorded death nothing dated later may be added.

The patient is enrolled on 2016-02-01, starts cycle 1 on 2016-02-02 and, where a test says so,
dies on 2016-03-10 (DIED).
"""

from __future__ import annotations

from datetime import date, timedelta

from ledger.commands import EndTreatment, RecordBosutinibDose, RecordDeath, RecordFollowUp
from ledger.domain.patient import ToxicityResolved
from ledger.domain.values import EndReason, VitalStatus
from ledger.errors import Violation
from ledger.policies.follow_up import check_follow_up
from ledger.policies.treatment import check_bosutinib_dose, check_death, check_death_final, check_end_treatment
from ledger.protocol import load_protocol
from tests.builders import Course

PROTOCOL = load_protocol()
C1 = date(2016, 2, 2)
DIED = date(2016, 3, 10)
ONE_DAY = timedelta(days=1)


def on_treatment() -> Course:
    course = Course.enrolled("P001", on="2016-02-01")
    course.cycle(1, C1.isoformat())
    course.cycle(2, "2016-03-01")
    return course


def dead() -> Course:
    course = on_treatment()
    course.death(DIED.isoformat())
    return course


def death(on: date) -> RecordDeath:
    return RecordDeath(patient_id="P001", died_on=on)


def rule_ids(found: list[Violation]) -> list[str]:
    return [v.rule_id for v in found]


def test_a_dose_dated_after_the_death_is_refused() -> None:
    found = check_bosutinib_dose(dead().state(), RecordBosutinibDose(patient_id="P001", taken_on=DIED + ONE_DAY, dose_mg=300), PROTOCOL)

    assert rule_ids(found) == ["DEATH-FINAL"]
    assert "died on 2016-03-10; a bosutinib dose dated 2016-03-11 cannot be added" in found[0].message


def test_a_dose_dated_after_both_the_end_of_treatment_and_the_death_names_both_rules() -> None:
    course = on_treatment()
    course.end("2016-03-05", "PROGRESSION")
    course.death(DIED.isoformat())

    found = check_bosutinib_dose(course.state(), RecordBosutinibDose(patient_id="P001", taken_on=DIED + ONE_DAY, dose_mg=300), PROTOCOL)

    assert rule_ids(found) == ["TREAT-WINDOW", "DEATH-FINAL"]
    assert "ended on 2016-03-05" in found[0].message and "died on 2016-03-10" in found[1].message


def test_a_dose_dated_before_the_death_and_entered_after_it_is_allowed() -> None:
    state = dead().state()

    assert check_bosutinib_dose(state, RecordBosutinibDose(patient_id="P001", taken_on=DIED - ONE_DAY, dose_mg=300), PROTOCOL) == []


def test_a_toxicity_with_onset_after_the_death_is_refused() -> None:
    assert rule_ids(check_death_final(dead().state(), DIED + ONE_DAY, "a toxicity")) == ["DEATH-FINAL"]


def test_a_toxicity_with_onset_on_the_day_of_death_is_allowed() -> None:
    assert check_death_final(dead().state(), DIED, "a toxicity") == []


def test_a_follow_up_contact_after_the_death_is_refused() -> None:
    course = on_treatment()
    course.end("2016-03-05", "PROGRESSION")
    course.death(DIED.isoformat())

    found = check_follow_up(course.state(), RecordFollowUp(patient_id="P001", contacted_on=DIED + ONE_DAY, vital_status=VitalStatus.ALIVE), PROTOCOL)

    assert rule_ids(found) == ["DEATH-FINAL"]


def test_ending_treatment_after_the_death_is_refused() -> None:
    found = check_end_treatment(dead().state(), EndTreatment(patient_id="P001", ended_on=DIED + ONE_DAY, end_reason=EndReason.DEATH))

    assert rule_ids(found) == ["DEATH-FINAL"]


def test_ending_treatment_on_the_day_of_death_is_allowed() -> None:
    assert check_end_treatment(dead().state(), EndTreatment(patient_id="P001", ended_on=DIED, end_reason=EndReason.DEATH)) == []


def test_a_second_death_is_refused() -> None:
    found = check_death(dead().state(), death(DIED))

    assert rule_ids(found) == ["DEATH-FINAL"]
    assert "already recorded on 2016-03-10" in found[0].message


def test_a_death_dated_before_facts_already_recorded_is_refused() -> None:
    course = on_treatment()
    course.toxicity("2016-03-12", grade=2)

    found = check_death(course.state(), death(DIED))

    assert rule_ids(found) == ["DEATH-FINAL"]
    assert "entries dated up to 2016-03-12, after the proposed death on 2016-03-10" in found[0].message


def test_a_death_on_the_date_of_the_last_recorded_fact_is_allowed() -> None:
    course = on_treatment()
    course.toxicity(DIED.isoformat(), grade=5)

    assert check_death(course.state(), death(DIED)) == []


def test_a_death_dated_before_enrollment_is_refused() -> None:
    found = check_death(Course.enrolled("P001", on="2016-02-01").state(), death(date(2016, 1, 31)))

    assert rule_ids(found) == ["TREAT-WINDOW"]


def test_a_death_dated_before_the_recorded_end_of_treatment_is_refused() -> None:
    course = on_treatment()
    course.end("2016-04-01", "PROGRESSION")

    found = check_death(course.state(), death(DIED))

    assert rule_ids(found) == ["DEATH-FINAL"]


def test_a_death_dated_before_a_recorded_toxicity_resolution_is_refused() -> None:
    course = on_treatment()
    rash = course.toxicity("2016-03-01", grade=2)
    course.add(ToxicityResolved, "2016-03-20", toxicity_id=rash, resolved_on=date(2016, 3, 20))

    found = check_death(course.state(), death(DIED))

    assert rule_ids(found) == ["DEATH-FINAL"]
