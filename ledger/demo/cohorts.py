"""The synthetic trial's data: the phase I cohorts, the 3+3 decisions, the phase II patients.

Nothing here describes a real patient: ids are ``D101``-``D112`` (phase I) and ``D201``-``D204``
(phase II). ``trial`` plans every course and decision as dated steps on one ``Timeline``.
"""

from __future__ import annotations

from datetime import date

from ledger.commands import DecideEscalation
from ledger.demo.course import (
    INVESTIGATOR,
    RESPONDER,
    STRATUM,
    Assessed,
    Course,
    Held,
    MovedInfusion,
    Reduction,
    Step,
    Timeline,
    Tox,
    course_steps,
)
from ledger.domain.values import Attribution, Cytogenetic, Decision, DiseaseStatus, EndReason, Mrd, Phase, Response
from ledger.protocol import Protocol

D = date.fromisoformat


def trial(protocol: Protocol) -> Timeline:
    """Every course's steps and the four 3+3 decisions, on one timeline."""
    low, mid, high = protocol.dose_levels_mg  # the story is written for three levels
    timeline = Timeline()
    for course in _phase_1(low, mid, high) + _phase_2(mid):
        timeline.extend(course_steps(course, protocol))
    decisions = [
        (D("2015-02-26"), low, Decision.ESCALATE, None, f"0/3 DLTs at {low} mg"),
        (D("2015-04-16"), mid, Decision.EXPAND, None, f"1/3 DLTs at {mid} mg"),
        (D("2015-06-04"), mid, Decision.ESCALATE, None, f"1/6 DLTs at {mid} mg"),
        (D("2015-07-23"), high, Decision.MTD_DECLARED, mid, f"2/3 DLTs at {high} mg; 1/6 at {mid} mg"),
    ]
    for on, dose, decision, mtd, why in decisions:
        reason = f"3+3 review at {dose} mg after the DLT windows closed"
        command = DecideEscalation(stratum=STRATUM, decided_on=on, dose_mg=dose, decision=decision, mtd_mg=mtd, reason=reason)
        mtd_text = f", MTD {mtd} mg" if mtd else ""
        timeline.add(Step(on, INVESTIGATOR, command, say=f"3+3 decision at {dose} mg: {decision.value}{mtd_text} ({why})"))
    return timeline


def _phase_1(low: int, mid: int, high: int) -> list[Course]:
    nausea = Tox(1, 3, "Nausea", 1, Attribution.POSSIBLE, resolved_after_days=6)
    platelets = Tox(1, 14, "Platelet count decreased", 3, Attribution.POSSIBLE, hematologic=True, resolved_after_days=12)
    neutrophils = Tox(1, 18, "Neutrophil count decreased", 4, Attribution.PROBABLE, hematologic=True, resolved_after_days=9)
    cr = Assessed(1, 28, Response.CR, Cytogenetic.CCyR, Mrd.NEGATIVE)
    cri = Assessed(1, 28, Response.CRi, Cytogenetic.CCyR, Mrd.POSITIVE, 0.002)
    phase = Phase.I
    # Course(id, phase, enrolled on, bosutinib mg, cycles, birth year, sex, ...)
    return [
        # 300 mg: three patients, no DLT
        Course("D101", phase, D("2015-01-12"), low, 4, 1958, "F", toxicities=(nausea, platelets), assessments=(cri,),
               end_reason=EndReason.TRANSPLANT),
        Course("D102", phase, D("2015-01-19"), low, 2, 1949, "M", diagnosis="CML_LYMPHOID_BP", abl_mutations=("E255K",),
               toxicities=(neutrophils,), assessments=(Assessed(1, 28, Response.PR, Cytogenetic.PCyR), Assessed(2, 28, Response.PD)),
               end_reason=EndReason.PROGRESSION, disease_status=DiseaseStatus.RELAPSE, follow_up_days=(84,),
               died_days_after_end=130, cause_of_death="progressive leukemia"),
        Course("D103", phase, D("2015-01-26"), low, 6, 1953, "M", toxicities=(nausea,), assessments=(cr,),
               end_reason=EndReason.COMPLETED),
        # 400 mg: one DLT in the first three (rash), none in the next three
        Course("D104", phase, D("2015-03-02"), mid, 6, 1960, "F", toxicities=(platelets,), assessments=(cr,),
               end_reason=EndReason.COMPLETED),
        Course("D105", phase, D("2015-03-09"), mid, 3, 1951, "M", cd22_percent=85.0,
               toxicities=(Tox(1, 12, "Rash maculo-papular", 3, Attribution.POSSIBLE, resolved_after_days=14), neutrophils),
               held=(Held(1, 12, 18),), reduction=Reduction(1, 19, low, "grade 3 rash (DLT); resumed one level lower"),
               assessments=(cri,), end_reason=EndReason.TRANSPLANT),
        Course("D106", phase, D("2015-03-16"), mid, 2, 1947, "M", abl_mutations=("Y253H",), toxicities=(nausea,),
               assessments=(Assessed(1, 28, Response.NR, Cytogenetic.NONE, Mrd.POSITIVE, 0.12), Assessed(2, 28, Response.NR)),
               end_reason=EndReason.NO_RESPONSE, disease_status=DiseaseStatus.RELAPSE, follow_up_days=(84, 168)),
        Course("D107", phase, D("2015-04-20"), mid, 6, 1966, "F", toxicities=(platelets, neutrophils), assessments=(cr,),
               end_reason=EndReason.COMPLETED),
        Course("D108", phase, D("2015-04-27"), mid, 3, 1955, "M", diagnosis="CML_LYMPHOID_BP", toxicities=(nausea,),
               assessments=(cr,), end_reason=EndReason.TRANSPLANT),
        Course("D109", phase, D("2015-05-04"), mid, 5, 1962, "F", abl_mutations=("F317L",), toxicities=(platelets,),
               assessments=(Assessed(1, 28, Response.CRp, Cytogenetic.PCyR), Assessed(2, 28, Response.CRi, Cytogenetic.CCyR)),
               end_reason=EndReason.WITHDRAWAL, follow_up_days=()),
        # 500 mg: two DLTs of three, so 400 mg (1/6) is the MTD
        Course("D110", phase, D("2015-06-08"), high, 2, 1950, "M",
               toxicities=(Tox(1, 15, "Alanine aminotransferase increased", 3, Attribution.PROBABLE, resolved_after_days=10), platelets),
               held=(Held(1, 15, 21),), reduction=Reduction(1, 22, mid, "grade 3 ALT increase (DLT); resumed one level lower"),
               assessments=(Assessed(1, 28, Response.PR), Assessed(2, 28, Response.PD)), end_reason=EndReason.PROGRESSION,
               disease_status=DiseaseStatus.RELAPSE),
        Course("D111", phase, D("2015-06-15"), high, 1, 1957, "F",
               toxicities=(Tox(1, 12, "Diarrhea", 3, Attribution.PROBABLE, serious=True, resolved_after_days=8),),
               held=(Held(1, 12, 18),), reduction=Reduction(1, 19, mid, "grade 3 diarrhea (DLT); resumed one level lower"),
               assessments=(Assessed(1, 28, Response.MLFS),), end_reason=EndReason.TOXICITY, disease_status=DiseaseStatus.UNKNOWN),
        Course("D112", phase, D("2015-06-22"), high, 4, 1964, "M", toxicities=(nausea, neutrophils), assessments=(cr,),
               reduction=Reduction(2, 4, mid, f"MTD declared at {mid} mg"), end_reason=EndReason.TRANSPLANT),
    ]


def _phase_2(mtd: int) -> list[Course]:
    phase = Phase.II
    cr_mrd_negative = Assessed(1, 28, Response.CR, Cytogenetic.CCyR, Mrd.NEGATIVE)
    return [
        # The responder: CR + CCyR + MRD-negative on day 28 of cycle 1, the day before cycle 2
        # starts, so cycles 2-6 (all started after it) get InO on day 1 only.
        Course(
            RESPONDER, phase, D("2015-08-27"), mtd, 6, 1959, "F", cd22_percent=92.0, bsa_m2=1.72, days_to_cycle_1=4,
            toxicities=(
                Tox(1, 2, "Nausea", 2, Attribution.POSSIBLE, resolved_after_days=5),
                Tox(1, 10, "Platelet count decreased", 2, Attribution.POSSIBLE, hematologic=True, resolved_after_days=11,
                    corrected_grade=3, correction_reason="source document verification: grade 3 per lab report"),
            ),
            moved_infusion=MovedInfusion(1, 8, 9, "clinic closed on cycle day 8 (Labor Day); InO given on day 9"),
            assessments=(cr_mrd_negative, Assessed(6, 28, Response.CR, Cytogenetic.CCyR, Mrd.NEGATIVE)),
            end_reason=EndReason.COMPLETED, try_extra_cycle=True,
        ),
        Course("D202", phase, D("2015-09-10"), mtd, 6, 1952, "M", abl_mutations=("E255K",),
               toxicities=(Tox(1, 16, "Neutrophil count decreased", 3, Attribution.POSSIBLE, hematologic=True, resolved_after_days=10),),
               assessments=(Assessed(1, 28, Response.PR, Cytogenetic.PCyR, Mrd.POSITIVE, 0.03),
                            Assessed(2, 28, Response.CRi, Cytogenetic.CCyR, Mrd.POSITIVE, 0.0004)),
               end_reason=EndReason.COMPLETED),
        Course("D203", phase, D("2015-10-01"), mtd, 3, 1945, "M", diagnosis="CML_LYMPHOID_BP",
               toxicities=(Tox(1, 5, "Nausea", 1, Attribution.UNLIKELY, resolved_after_days=4),),
               assessments=(Assessed(1, 28, Response.PR), Assessed(3, 28, Response.PD)), end_reason=EndReason.PROGRESSION,
               disease_status=DiseaseStatus.RELAPSE, follow_up_days=(84,), died_days_after_end=121, cause_of_death="progressive leukemia"),
        Course("D204", phase, D("2015-10-22"), mtd, 2, 1968, "F",
               toxicities=(Tox(1, 14, "Platelet count decreased", 4, Attribution.POSSIBLE, hematologic=True, resolved_after_days=15),),
               assessments=(cr_mrd_negative,), end_reason=EndReason.TRANSPLANT),
    ]
