"""ESC-3PLUS3, ESC-COHORT and PHASE2-OPEN (protocol.md): the phase I 3+3 escalation of a stratum.

Each cohort starts cycle 1 on the day it is enrolled; ``Stratum.cohort`` returns the first day on
which its DLT windows have all closed, the day its decision is taken. The next cohort is enrolled
the day after that decision. Dose levels are 300, 400 and 500 mg.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.commands import DecideEscalation
from ledger.domain.values import Decision
from ledger.errors import Violation
from ledger.policies.escalation import AWAIT, ENROLL, Recommendation, check_cohort, check_decision, check_phase2_open, recommend
from tests.unit.escalation_builders import Stratum

OPEN = date(2016, 1, 4)
ONE_DAY = timedelta(days=1)


def next_day(day: date) -> date:
    return day + ONE_DAY


def recommendation(stratum: Stratum, on: date) -> Recommendation | None:
    return recommend(stratum.state(on), stratum.protocol)


def decide(stratum: Stratum, on: date, decision: Decision, dose_mg: int, mtd_mg: int | None = None) -> list[Violation]:
    """What ESC-3PLUS3 says of this decision (the decision is not recorded)."""
    cmd = DecideEscalation(stratum="default", decided_on=on, dose_mg=dose_mg, decision=decision, mtd_mg=mtd_mg)
    return check_decision(stratum.state(on), cmd, stratum.protocol)


def joining(stratum: Stratum, on: date) -> list[Violation]:
    return check_cohort(stratum.state(on), "P-NEW", stratum.protocol)


def rule_ids(found: list[Violation]) -> list[str]:
    return [v.rule_id for v in found]


def action(rec: Recommendation | None) -> tuple[str, int, int | None] | None:
    return None if rec is None else (rec.action, rec.dose_mg, rec.mtd_mg)


# --- scenarios ----------------------------------------------------------------------------


def at_400_after_0_of_3() -> tuple[Stratum, date]:
    """300 mg: 0/3, escalated; returns the stratum and the day the 400 mg cohort may start."""
    stratum = Stratum()
    done = stratum.cohort(300, OPEN)
    stratum.decide(done, Decision.ESCALATE, 300)
    return stratum, next_day(done)


def at_400_after_1_of_6() -> tuple[Stratum, date]:
    """300 mg: 1/3, expanded, 1/6, escalated."""
    stratum = Stratum()
    done = stratum.cohort(300, OPEN, dlts=1)
    stratum.decide(done, Decision.EXPAND, 300)
    done = stratum.cohort(300, next_day(done))
    stratum.decide(done, Decision.ESCALATE, 300)
    return stratum, next_day(done)


def de_escalated_to_300() -> tuple[Stratum, date]:
    """300 mg: 0/3, escalated; 400 mg: 2/3, de-escalated to 300 mg (to be expanded to 6)."""
    stratum, start = at_400_after_0_of_3()
    done = stratum.cohort(400, start, dlts=2)
    stratum.decide(done, Decision.DE_ESCALATE, 400)
    return stratum, next_day(done)


def at_500() -> tuple[Stratum, date]:
    stratum, start = at_400_after_0_of_3()
    done = stratum.cohort(400, start)
    stratum.decide(done, Decision.ESCALATE, 400)
    return stratum, next_day(done)


# --- ESC-3PLUS3: ENROLL and AWAIT_DLT_EVALUATION ------------------------------------------


def test_a_level_with_fewer_than_three_patients_asks_for_enrollment() -> None:
    stratum = Stratum()
    stratum.cohort(300, OPEN, size=2)

    assert action(recommendation(stratum, OPEN + timedelta(days=40))) == (ENROLL, 300, None)


def test_a_decision_while_the_level_lacks_patients_is_refused() -> None:
    stratum = Stratum()
    stratum.cohort(300, OPEN, size=2)

    found = decide(stratum, OPEN + timedelta(days=40), Decision.ESCALATE, 300)

    assert rule_ids(found) == ["ESC-3PLUS3"]
    assert "more patients must be enrolled" in found[0].message


def test_three_patients_still_in_their_dlt_window_await_evaluation() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN)

    assert action(recommendation(stratum, done - ONE_DAY)) == (AWAIT, 300, None)


def test_a_decision_dated_before_the_dlt_windows_closed_is_refused() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN)

    found = decide(stratum, done - ONE_DAY, Decision.ESCALATE, 300)

    assert rule_ids(found) == ["ESC-3PLUS3"]
    assert "DLT evaluation is not complete" in found[0].message


# --- ESC-3PLUS3: ESCALATE and EXPAND ------------------------------------------------------


def test_no_dlt_in_three_evaluable_patients_recommends_escalation() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN)

    assert action(recommendation(stratum, done)) == ("ESCALATE", 300, None)


def test_escalating_after_no_dlt_in_three_is_accepted() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN)

    assert decide(stratum, done, Decision.ESCALATE, 300) == []


def test_expanding_after_no_dlt_in_three_is_refused() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN)

    found = decide(stratum, done, Decision.EXPAND, 300)

    assert rule_ids(found) == ["ESC-3PLUS3"]
    assert "the 3+3 rule gives ESCALATE for 300 mg (0/3 DLTs at 300 mg), not EXPAND" in found[0].message


def test_a_recorded_escalation_opens_the_next_level() -> None:
    stratum, start = at_400_after_0_of_3()

    assert stratum.state(start).current_dose_mg == 400


def test_one_dlt_in_three_recommends_expanding_the_level_to_six() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN, dlts=1)

    assert action(recommendation(stratum, done)) == ("EXPAND", 300, None)


def test_escalating_after_one_dlt_in_three_is_refused() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN, dlts=1)

    found = decide(stratum, done, Decision.ESCALATE, 300)

    assert rule_ids(found) == ["ESC-3PLUS3"]
    assert "gives EXPAND" in found[0].message


def test_expanding_after_one_dlt_in_three_is_accepted() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN, dlts=1)

    assert decide(stratum, done, Decision.EXPAND, 300) == []


def test_one_dlt_in_six_recommends_escalation() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN, dlts=1)
    stratum.decide(done, Decision.EXPAND, 300)
    done = stratum.cohort(300, next_day(done))

    assert action(recommendation(stratum, done)) == ("ESCALATE", 300, None)


def test_escalating_after_one_dlt_in_six_is_accepted() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN, dlts=1)
    stratum.decide(done, Decision.EXPAND, 300)
    done = stratum.cohort(300, next_day(done))

    assert decide(stratum, done, Decision.ESCALATE, 300) == []


# --- ESC-3PLUS3: too toxic → DE_ESCALATE, MTD_DECLARED or STOP ----------------------------


def test_two_dlts_above_a_level_of_only_three_recommend_de_escalation() -> None:
    stratum, start = at_400_after_0_of_3()
    done = stratum.cohort(400, start, dlts=2)

    assert action(recommendation(stratum, done)) == ("DE_ESCALATE", 400, None)


def test_two_dlts_make_a_level_too_toxic_while_its_third_patient_is_still_in_the_window() -> None:
    stratum, start = at_400_after_0_of_3()
    stratum.cohort(400, start, dlts=2)

    second_dlt_onset = start + timedelta(days=7)

    assert action(recommendation(stratum, second_dlt_onset)) == ("DE_ESCALATE", 400, None)


def test_de_escalating_from_a_too_toxic_level_is_accepted() -> None:
    stratum, start = at_400_after_0_of_3()
    done = stratum.cohort(400, start, dlts=2)

    assert decide(stratum, done, Decision.DE_ESCALATE, 400) == []


def test_declaring_an_mtd_when_the_level_below_has_only_three_patients_is_refused() -> None:
    stratum, start = at_400_after_0_of_3()
    done = stratum.cohort(400, start, dlts=2)

    found = decide(stratum, done, Decision.MTD_DECLARED, 400, mtd_mg=300)

    assert rule_ids(found) == ["ESC-3PLUS3"]
    assert "gives DE_ESCALATE for 400 mg" in found[0].message


def test_after_de_escalation_the_level_below_takes_six_patients() -> None:
    stratum, start = de_escalated_to_300()

    state = stratum.state(start)

    assert (state.current_dose_mg, state.level(300).cap, action(recommend(state, stratum.protocol))) == (300, 6, (ENROLL, 300, None))


def test_two_dlts_above_a_level_with_at_most_one_dlt_in_six_declare_that_level_the_mtd() -> None:
    stratum, start = at_400_after_1_of_6()
    done = stratum.cohort(400, start, dlts=2)

    assert action(recommendation(stratum, done)) == ("MTD_DECLARED", 400, 300)


def test_declaring_the_level_below_the_mtd_after_two_dlts_is_accepted() -> None:
    stratum, start = at_400_after_1_of_6()
    done = stratum.cohort(400, start, dlts=2)

    assert decide(stratum, done, Decision.MTD_DECLARED, 400, mtd_mg=300) == []


@pytest.mark.parametrize("mtd_mg", [400, None])
def test_declaring_another_mtd_than_the_rule_gives_is_refused(mtd_mg: int | None) -> None:
    stratum, start = at_400_after_1_of_6()
    done = stratum.cohort(400, start, dlts=2)

    found = decide(stratum, done, Decision.MTD_DECLARED, 400, mtd_mg=mtd_mg)

    assert rule_ids(found) == ["ESC-3PLUS3"]
    assert f"gives an MTD of 300 mg, not {mtd_mg} mg" in found[0].message


def test_at_most_one_dlt_in_six_below_a_too_toxic_level_declares_the_mtd() -> None:
    stratum, start = de_escalated_to_300()
    done = stratum.cohort(300, start, dlts=1)

    assert action(recommendation(stratum, done)) == ("MTD_DECLARED", 300, 300)


def test_escalating_back_to_a_level_found_too_toxic_is_refused() -> None:
    stratum, start = de_escalated_to_300()
    done = stratum.cohort(300, start)

    found = decide(stratum, done, Decision.ESCALATE, 300)

    assert rule_ids(found) == ["ESC-3PLUS3"]
    assert "gives MTD_DECLARED for 300 mg (0/6 DLTs at 300 mg; 400 mg was too toxic)" in found[0].message


def test_two_dlts_at_the_lowest_level_recommend_stopping() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN, dlts=2)

    assert action(recommendation(stratum, done)) == ("STOP", 300, None)


def test_stopping_when_the_lowest_level_is_too_toxic_is_accepted() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN, dlts=2)

    assert decide(stratum, done, Decision.STOP, 300) == []


def test_expanding_a_lowest_level_with_two_dlts_is_refused() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN, dlts=2)

    assert rule_ids(decide(stratum, done, Decision.EXPAND, 300)) == ["ESC-3PLUS3"]


def test_two_dlts_in_six_at_the_lowest_level_after_de_escalation_recommend_stopping() -> None:
    stratum, start = de_escalated_to_300()
    done = stratum.cohort(300, start, dlts=2)

    assert action(recommendation(stratum, done)) == ("STOP", 300, None)


# --- ESC-3PLUS3: MAX_DOSE_REACHED ---------------------------------------------------------


def test_no_dlt_in_three_at_the_top_level_recommends_max_dose_reached() -> None:
    stratum, start = at_500()
    done = stratum.cohort(500, start)

    assert action(recommendation(stratum, done)) == ("MAX_DOSE_REACHED", 500, 500)


def test_one_dlt_in_six_at_the_top_level_recommends_max_dose_reached() -> None:
    stratum, start = at_500()
    done = stratum.cohort(500, start, dlts=1)
    stratum.decide(done, Decision.EXPAND, 500)
    done = stratum.cohort(500, next_day(done))

    assert action(recommendation(stratum, done)) == ("MAX_DOSE_REACHED", 500, 500)


def test_declaring_the_maximum_dose_reached_at_the_top_level_is_accepted() -> None:
    stratum, start = at_500()
    done = stratum.cohort(500, start)

    assert decide(stratum, done, Decision.MAX_DOSE_REACHED, 500, mtd_mg=500) == []


def test_escalating_beyond_the_top_level_is_refused() -> None:
    stratum, start = at_500()
    done = stratum.cohort(500, start)

    found = decide(stratum, done, Decision.ESCALATE, 500)

    assert rule_ids(found) == ["ESC-3PLUS3"]
    assert "gives MAX_DOSE_REACHED" in found[0].message


# --- ESC-3PLUS3: decisions that do not fit the stratum ------------------------------------


def test_a_decision_about_another_level_than_the_current_one_is_refused() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN)

    found = decide(stratum, done, Decision.ESCALATE, 400)

    assert rule_ids(found) == ["ESC-3PLUS3"]
    assert "current dose level of stratum default on 2016-02-01 is 300 mg, not 400 mg" in found[0].message


def test_no_decision_is_due_once_the_escalation_has_concluded() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN, dlts=2)
    stratum.decide(done, Decision.STOP, 300)

    found = decide(stratum, next_day(done), Decision.STOP, 300)

    assert rule_ids(found) == ["ESC-3PLUS3"]
    assert "has concluded (STOPPED)" in found[0].message


# --- ESC-COHORT ---------------------------------------------------------------------------


def test_the_third_patient_joins_the_open_level() -> None:
    stratum = Stratum()
    stratum.cohort(300, OPEN, size=2)

    assert joining(stratum, OPEN) == []


def test_a_fourth_patient_is_refused_while_the_three_are_in_their_dlt_window() -> None:
    stratum = Stratum()
    stratum.cohort(300, OPEN)

    found = joining(stratum, OPEN + timedelta(days=10))

    assert rule_ids(found) == ["ESC-COHORT"]
    assert "has its 3 patients and its DLT evaluation is not complete" in found[0].message


def test_a_fourth_patient_is_refused_until_the_due_decision_is_recorded() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN)

    found = joining(stratum, done)

    assert rule_ids(found) == ["ESC-COHORT"]
    assert "the 3+3 decision (ESCALATE) must be recorded first" in found[0].message


def test_a_fourth_patient_joins_a_level_expanded_to_six() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN, dlts=1)
    stratum.decide(done, Decision.EXPAND, 300)

    assert joining(stratum, next_day(done)) == []


def test_a_seventh_patient_is_refused_at_a_level_expanded_to_six() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN, dlts=1)
    stratum.decide(done, Decision.EXPAND, 300)
    stratum.cohort(300, next_day(done))

    found = joining(stratum, next_day(done))

    assert rule_ids(found) == ["ESC-COHORT"]
    assert "has its 6 patients" in found[0].message


def test_a_patient_who_left_before_the_dlt_window_closed_without_a_dlt_is_replaced() -> None:
    stratum = Stratum()
    stratum.cohort(300, OPEN)
    stratum.courses["P001"].end((OPEN + timedelta(days=9)).isoformat(), "WITHDRAWAL")

    assert joining(stratum, OPEN + timedelta(days=10)) == []


def test_the_first_patient_of_the_next_level_joins_after_escalation() -> None:
    stratum, start = at_400_after_0_of_3()

    assert joining(stratum, start) == []


def test_no_patient_joins_a_too_toxic_level_before_the_decision_is_recorded() -> None:
    stratum, start = at_400_after_0_of_3()
    done = stratum.cohort(400, start, dlts=2)

    found = joining(stratum, done)

    assert rule_ids(found) == ["ESC-COHORT"]
    assert "(DE_ESCALATE) must be recorded first" in found[0].message


def test_no_phase_1_patient_joins_once_the_escalation_has_concluded() -> None:
    stratum, start = at_400_after_1_of_6()
    done = stratum.cohort(400, start, dlts=2)
    stratum.decide(done, Decision.MTD_DECLARED, 400, mtd_mg=300)

    found = joining(stratum, next_day(done))

    assert rule_ids(found) == ["ESC-COHORT"]
    assert "has concluded (MTD_DECLARED)" in found[0].message


# --- PHASE2-OPEN --------------------------------------------------------------------------


def test_phase_2_is_closed_in_a_stratum_without_phase_1_escalation() -> None:
    found = check_phase2_open(None, "default")

    assert rule_ids(found) == ["PHASE2-OPEN"]
    assert "phase II of stratum default opens once an MTD" in found[0].message


def test_phase_2_is_closed_while_the_escalation_goes_on() -> None:
    stratum, start = at_400_after_0_of_3()

    assert rule_ids(check_phase2_open(stratum.state(start), "default")) == ["PHASE2-OPEN"]


def test_phase_2_opens_at_the_declared_mtd() -> None:
    stratum, start = at_400_after_1_of_6()
    done = stratum.cohort(400, start, dlts=2)
    stratum.decide(done, Decision.MTD_DECLARED, 400, mtd_mg=300)
    state = stratum.state(next_day(done))

    assert (check_phase2_open(state, "default"), state.mtd_mg) == ([], 300)


def test_phase_2_opens_at_the_top_level_once_the_maximum_dose_is_reached() -> None:
    stratum, start = at_500()
    done = stratum.cohort(500, start)
    stratum.decide(done, Decision.MAX_DOSE_REACHED, 500, mtd_mg=500)
    state = stratum.state(next_day(done))

    assert (check_phase2_open(state, "default"), state.mtd_mg) == ([], 500)


def test_phase_2_stays_closed_when_the_escalation_stopped_without_a_tolerated_dose() -> None:
    stratum = Stratum()
    done = stratum.cohort(300, OPEN, dlts=2)
    stratum.decide(done, Decision.STOP, 300)

    assert rule_ids(check_phase2_open(stratum.state(next_day(done)), "default")) == ["PHASE2-OPEN"]


def test_phase_2_is_closed_on_a_date_before_the_mtd_was_declared() -> None:
    stratum, start = at_400_after_1_of_6()
    done = stratum.cohort(400, start, dlts=2)
    stratum.decide(done, Decision.MTD_DECLARED, 400, mtd_mg=300)

    assert rule_ids(check_phase2_open(stratum.state(done - ONE_DAY), "default")) == ["PHASE2-OPEN"]


# --- ESC-3PLUS3: any sequence of cohort outcomes ------------------------------------------


def three_plus_three(cohort_dlts: list[int], levels: tuple[int, ...]) -> tuple[str, int | None]:
    """The conclusion protocol.md's 3+3 reaches when successive cohorts of 3 have these DLT counts."""
    outcomes = iter(cohort_dlts)
    i, caps, too_toxic = 0, dict.fromkeys(range(len(levels)), 3), set()
    patients, dlts = dict.fromkeys(range(len(levels)), 0), dict.fromkeys(range(len(levels)), 0)
    while True:
        if dlts[i] >= 2:
            if i == 0:
                return "STOPPED", None
            if patients[i - 1] >= 6 and dlts[i - 1] <= 1:
                return "MTD_DECLARED", levels[i - 1]
            too_toxic.add(i)
            i -= 1
            caps[i] = 6
        elif patients[i] < caps[i]:
            patients[i] += 3
            dlts[i] += next(outcomes)
        elif caps[i] == 3 and dlts[i] == 1:
            caps[i] = 6
        elif i + 1 in too_toxic:
            return "MTD_DECLARED", levels[i]
        elif i + 1 == len(levels):
            return "MAX_DOSE_REACHED", levels[i]
        else:
            i += 1


#: DLTs in a cohort of 3, weighted towards 0 and 1 so that every conclusion is reached
COHORT_DLTS = st.integers(min_value=0, max_value=1) | st.integers(min_value=0, max_value=3)


@settings(max_examples=60, deadline=None)
@given(st.lists(COHORT_DLTS, min_size=12, max_size=12))
def test_following_every_recommendation_reaches_the_conclusion_of_the_3_plus_3_rule(cohort_dlts: list[int]) -> None:
    stratum = Stratum()
    outcomes = iter(cohort_dlts)
    on = OPEN
    rec = recommendation(stratum, on)
    while rec is not None:
        if rec.action == ENROLL:
            on = stratum.cohort(rec.dose_mg, on, dlts=next(outcomes))
        else:
            assert decide(stratum, on, Decision(rec.action), rec.dose_mg, rec.mtd_mg) == []
            stratum.decide(on, Decision(rec.action), rec.dose_mg, rec.mtd_mg)
            on = next_day(on)
        rec = recommendation(stratum, on)
    state = stratum.state(on)

    assert (state.status, state.mtd_mg) == three_plus_three(cohort_dlts, stratum.protocol.dose_levels_mg)
