"""ELIG-DIAGNOSIS, ELIG-CD22, ELIG-T315I: who may be enrolled (protocol.md)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.commands import EnrollPatient
from ledger.domain.values import Phase
from ledger.errors import Violation
from ledger.policies.eligibility import check_eligibility
from ledger.protocol import load_protocol

PROTOCOL = load_protocol()
THRESHOLD = PROTOCOL.cd22_min_percent


def enrollment(**changes: Any) -> EnrollPatient:
    fields: dict[str, Any] = {
        "patient_id": "P001",
        "enrolled_on": date(2016, 2, 1),
        "diagnosis": "PH_POS_ALL",
        "phase": Phase.I,
        "cd22_percent": 60.0,
        "abl_mutations": [],
        "bsa_m2": 1.8,
        **changes,
    }
    return EnrollPatient(**fields)


def rule_ids(found: list[Violation]) -> list[str]:
    return [v.rule_id for v in found]


@pytest.mark.parametrize("diagnosis", ["PH_POS_ALL", "CML_LYMPHOID_BP"])
def test_ph_positive_all_and_cml_in_lymphoid_blast_phase_are_eligible_diagnoses(diagnosis: str) -> None:
    assert check_eligibility(enrollment(diagnosis=diagnosis), PROTOCOL) == []


@pytest.mark.parametrize("diagnosis", ["AML", "CML_CHRONIC_PHASE", "PH_NEG_ALL", ""])
def test_any_other_diagnosis_is_refused_by_elig_diagnosis(diagnosis: str) -> None:
    found = check_eligibility(enrollment(diagnosis=diagnosis), PROTOCOL)

    assert rule_ids(found) == ["ELIG-DIAGNOSIS"]
    assert "PH_POS_ALL or CML_LYMPHOID_BP" in found[0].message


def test_cd22_exactly_at_the_threshold_is_eligible() -> None:
    assert check_eligibility(enrollment(cd22_percent=THRESHOLD), PROTOCOL) == []


@given(st.floats(min_value=THRESHOLD, max_value=100.0))
def test_cd22_at_or_above_the_threshold_is_eligible(cd22: float) -> None:
    assert check_eligibility(enrollment(cd22_percent=cd22), PROTOCOL) == []


@given(st.floats(min_value=0.0, max_value=THRESHOLD, exclude_max=True))
def test_cd22_below_the_threshold_is_refused_by_elig_cd22(cd22: float) -> None:
    found = check_eligibility(enrollment(cd22_percent=cd22), PROTOCOL)

    assert rule_ids(found) == ["ELIG-CD22"]
    assert f"at least {THRESHOLD:g}% is required" in found[0].message


def test_the_cd22_threshold_is_read_from_the_protocol_definition() -> None:
    stricter = replace(PROTOCOL, cd22_min_percent=30.0)

    assert rule_ids(check_eligibility(enrollment(cd22_percent=25.0), stricter)) == ["ELIG-CD22"]


@pytest.mark.parametrize("mutations", [["T315I"], ["t315i"], ["E255K", "T315I"]])
def test_a_t315i_mutation_is_refused_by_elig_t315i(mutations: list[str]) -> None:
    found = check_eligibility(enrollment(abl_mutations=mutations), PROTOCOL)

    assert rule_ids(found) == ["ELIG-T315I"]
    assert "T315I" in found[0].message


@pytest.mark.parametrize("mutations", [["E255K"], ["Y253H", "F317L"], []])
def test_other_kinase_domain_mutations_are_eligible(mutations: list[str]) -> None:
    assert check_eligibility(enrollment(abl_mutations=mutations), PROTOCOL) == []


def test_every_eligibility_rule_a_patient_breaks_is_reported() -> None:
    found = check_eligibility(enrollment(diagnosis="AML", cd22_percent=5.0, abl_mutations=["T315I"]), PROTOCOL)

    assert rule_ids(found) == ["ELIG-DIAGNOSIS", "ELIG-CD22", "ELIG-T315I"]


@pytest.mark.parametrize("written", ["T315I", "t315i", "p.T315I", "ABL1:T315I", " T315I"])
def test_t315i_is_recognised_however_it_is_written(written: str) -> None:
    found = check_eligibility(_enrollment_with_mutations([written.strip() or written]), load_protocol())
    assert [v.rule_id for v in found] == ["ELIG-T315I"]


def test_a_mutation_that_merely_contains_the_letters_is_not_t315i() -> None:
    assert check_eligibility(_enrollment_with_mutations(["T315IX", "AT315I"]), load_protocol()) == []


def _enrollment_with_mutations(mutations: list[str]) -> EnrollPatient:
    return EnrollPatient(
        patient_id="P1", enrolled_on=date(2016, 2, 1), diagnosis="PH_POS_ALL", phase=Phase.I, cd22_percent=60.0, abl_mutations=mutations, bsa_m2=1.8
    )
