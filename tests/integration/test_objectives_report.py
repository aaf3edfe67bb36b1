"""The objectives report on a small trial computed by hand, recorded through the ledger's commands.

Six phase I patients (stratum ``default``), on SQLite and PostgreSQL:

| patient | dose | CD22 | ABL | course | OS (days from enrollment) |
|---|---|---|---|---|---|
| P1 | 300 | 80 | — | CR + CCyR + MRD-negative on 02-01; died 07-01 | 179, death |
| P2 | 300 | 30 | E255K | PR 02-01, PD 03-01, ended for progression 03-01; died 04-30 | 117, death |
| P3 | 300 | 70 | — | CRi (PCyR, MRD-positive) 02-01; completed 03-01; alive at follow-up 05-24 | 141, censored |
| P4 | 400 | 90 | — | grade 3 rash on 02-15 (a DLT); CR on 03-07, recorded 30 days after the rest | 28, censored |
| P5 | 400 | 40 | Y253H | NR 03-07; died 03-20 | 41, death |
| P6 | 400 | 50 | — | one dose on 02-08, nothing since | 0, censored |

Kaplan–Meier by hand, overall survival: at risk 4 at day 41 → S = 3/4; 3 at day 117 →
S = 3/4 · 2/3 = 1/2 (the median: 117 days); 1 at day 179 → S = 0. Duration of response (P1 151
days to death; P3 censored at 113; P4 censored at 0): S = 1 until day 151, then 0; median 151.
CR/CRi 3/6 (exact 95% CI 0.1181–0.8819), CCyR and MRD-negative 1/6 (0.0042–0.6412).
CD22 median 60: above it P1, P3, P4 all respond, at or below P2, P5, P6 none (Fisher p = 0.1).
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from ledger.application import TrialLedger
from ledger.clock import FixedClock
from ledger.commands import (
    AssessResponse,
    DecideEscalation,
    EndTreatment,
    EnrollPatient,
    RecordBosutinibDose,
    RecordDeath,
    RecordFollowUp,
    ReportToxicity,
    StartCycle,
)
from ledger.domain.values import Actor, Attribution, Cytogenetic, Decision, EndReason, Mrd, Phase, Response, VitalStatus
from ledger.reports import sdtm
from ledger.reports.data import gather
from ledger.reports.objectives import report_document

D = date.fromisoformat
LATER = D("2016-12-31")


class Trial:
    """The six patients; ``ids`` names the entries the expected figures rest on."""

    def __init__(self, ledger: TrialLedger, actor: Actor, clock: FixedClock) -> None:
        self.ledger, self.actor, self.ids = ledger, actor, {}
        for pid, cd22, abl, on in (("P1", 80.0, [], "2016-01-04"), ("P2", 30.0, ["E255K"], "2016-01-04"), ("P3", 70.0, [], "2016-01-04")):
            self.start(pid, cd22, abl, on)
        self.record("P1 CR", AssessResponse(patient_id="P1", assessed_on=D("2016-02-01"), response=Response.CR, cytogenetic=Cytogenetic.CCyR, mrd=Mrd.NEGATIVE))
        self.record("P2 PR", AssessResponse(patient_id="P2", assessed_on=D("2016-02-01"), response=Response.PR))
        p3 = AssessResponse(patient_id="P3", assessed_on=D("2016-02-01"), response=Response.CRi, cytogenetic=Cytogenetic.PCyR, mrd=Mrd.POSITIVE)
        self.record("P3 CRi", p3)
        self.record("decision", DecideEscalation(stratum="default", decided_on=D("2016-02-05"), dose_mg=300, decision=Decision.ESCALATE))
        for pid, cd22, abl in (("P4", 90.0, []), ("P5", 40.0, ["Y253H"]), ("P6", 50.0, [])):
            self.start(pid, cd22, abl, "2016-02-08")
        self.record("P4 rash", ReportToxicity(patient_id="P4", onset_on=D("2016-02-15"), term="Rash maculo-papular", grade=3, attribution=Attribution.POSSIBLE))
        self.record("P2 PD", AssessResponse(patient_id="P2", assessed_on=D("2016-03-01"), response=Response.PD))
        self.record("P2 end", EndTreatment(patient_id="P2", ended_on=D("2016-03-01"), end_reason=EndReason.PROGRESSION))
        self.record("P3 end", EndTreatment(patient_id="P3", ended_on=D("2016-03-01"), end_reason=EndReason.COMPLETED))
        self.record("P5 NR", AssessResponse(patient_id="P5", assessed_on=D("2016-03-07"), response=Response.NR))
        self.record("P5 death", RecordDeath(patient_id="P5", died_on=D("2016-03-20")))
        self.record("P2 death", RecordDeath(patient_id="P2", died_on=D("2016-04-30")))
        self.record("P3 alive", RecordFollowUp(patient_id="P3", contacted_on=D("2016-05-24"), vital_status=VitalStatus.ALIVE))
        self.record("P1 death", RecordDeath(patient_id="P1", died_on=D("2016-07-01")))
        self.before_p4_response = clock.now()
        clock.advance(days=30)
        self.record("P4 CR", AssessResponse(patient_id="P4", assessed_on=D("2016-03-07"), response=Response.CR))

    def start(self, pid: str, cd22: float, abl: list[str], on: str) -> None:
        enroll = EnrollPatient(patient_id=pid, enrolled_on=D(on), diagnosis="PH_POS_ALL", phase=Phase.I, cd22_percent=cd22, abl_mutations=abl, bsa_m2=1.8)
        self.record(f"{pid} enrolled", enroll)
        self.record(f"{pid} cycle 1", StartCycle(patient_id=pid, cycle=1, started_on=D(on)))
        self.record(f"{pid} dose", RecordBosutinibDose(patient_id=pid, taken_on=D(on), dose_mg=300 if on == "2016-01-04" else 400))

    def record(self, name: str, command: object) -> None:
        self.ids[name] = self.ledger.handle(command, self.actor).entry_ids[0]  # type: ignore[arg-type]


@pytest.fixture
def trial(ledger: TrialLedger, investigator: Actor, clock: FixedClock) -> Trial:
    return Trial(ledger, investigator, clock)


def objectives(ledger: TrialLedger, as_of: datetime | None = None, valid_on: date = LATER) -> dict:  # type: ignore[type-arg]
    return report_document(ledger, as_of=as_of, valid_on=valid_on)["objectives"]  # type: ignore[no-any-return]


def test_response_rates_and_their_exact_intervals_are_the_hand_computed_ones(ledger: TrialLedger, trial: Trial) -> None:
    o2 = objectives(ledger)["O2"]
    overall = o2["overall"]
    assert overall["n"] == 6 and o2["by_phase"]["II"]["n"] == 0
    assert (overall["cr_cri"]["count"], overall["cr_cri"]["rate"]) == (3, 0.5)
    assert overall["cr_cri"]["ci95"] == pytest.approx([0.1181, 0.8819], abs=1e-4)
    assert overall["ccyr"]["count"] == overall["mrd_negative"]["count"] == 1
    assert overall["mrd_negative"]["ci95"] == pytest.approx([0.0042, 0.6412], abs=1e-4)
    assert overall["best_response_counts"] == {"CR": 2, "CRi": 1, "PR": 1, "NR": 1, "NOT_ASSESSED": 1}


def test_each_rate_names_the_patients_and_the_entries_it_counts(ledger: TrialLedger, trial: Trial) -> None:
    o2 = objectives(ledger)["O2"]
    cr = o2["overall"]["cr_cri"]
    assert cr["patients"] == ["P1", "P3", "P4"]
    assert cr["entry_ids"] == sorted(trial.ids[k] for k in ("P1 CR", "P3 CRi", "P4 CR"))
    assert {trial.ids[f"P{n} enrolled"] for n in range(1, 7)} <= set(o2["overall"]["population_entry_ids"])
    assert set(cr["entry_ids"]) <= set(o2["sources"])


def test_overall_survival_is_the_hand_computed_kaplan_meier(ledger: TrialLedger, trial: Trial) -> None:
    o4 = objectives(ledger)["O4"]
    assert (o4["n"], o4["deaths"], o4["median_days"]) == (6, 3, 117.0)
    subjects = {s["patient_id"]: (s["days"], s["event"]) for s in o4["subjects"]}
    assert subjects == {"P1": (179, True), "P2": (117, True), "P3": (141, False), "P4": (28, False), "P5": (41, True), "P6": (0, False)}
    curve = {pt["day"]: pt["survival"] for pt in o4["curve"]}
    assert curve[41.0] == pytest.approx(0.75) and curve[117.0] == pytest.approx(0.5) and curve[179.0] == 0.0
    assert o4["one_year"]["estimate"] == 0.0
    p1 = next(s for s in o4["subjects"] if s["patient_id"] == "P1")
    assert (p1["from_entry_id"], p1["to_entry_id"]) == (trial.ids["P1 enrolled"], trial.ids["P1 death"])
    p3 = next(s for s in o4["subjects"] if s["patient_id"] == "P3")
    assert p3["to_entry_id"] == trial.ids["P3 alive"]  # censored at the last contact that found the patient alive


def test_duration_of_response_runs_from_the_first_cr_to_death_or_the_last_contact(ledger: TrialLedger, trial: Trial) -> None:
    o3 = objectives(ledger)["O3"]
    assert {s["patient_id"]: (s["days"], s["event"]) for s in o3["subjects"]} == {"P1": (151, True), "P3": (113, False), "P4": (0, False)}
    assert (o3["relapses_or_deaths"], o3["median_days"]) == (1, 151.0)


def test_escalation_and_its_dlts_trace_to_their_entries(ledger: TrialLedger, trial: Trial) -> None:
    (stratum,) = objectives(ledger)["O1"]["strata"]
    levels = [(lv["dose_mg"], lv["patients"], lv["evaluable"], lv["dlts"], lv["decision"]) for lv in stratum["levels"]]
    assert levels == [(300, 3, 3, 0, "ESCALATE"), (400, 3, 3, 1, None), (500, 0, 0, 0, None)]
    assert [d["entry_id"] for d in stratum["dlts"]] == [trial.ids["P4 rash"]]
    assert stratum["dlts"][0]["cycle_day"] == 8
    assert trial.ids["decision"] in stratum["levels"][0]["entry_ids"]


def test_response_by_cd22_and_by_abl_mutation(ledger: TrialLedger, trial: Trial) -> None:
    o = objectives(ledger)
    o5, o6 = o["O5"], o["O6"]
    assert o5["median_cd22_percent"] == 60.0
    assert (o5["above_median"]["cr_cri"]["count"], o5["above_median"]["n"]) == (3, 3)
    assert (o5["at_or_below_median"]["cr_cri"]["count"], o5["at_or_below_median"]["n"]) == (0, 3)
    assert o5["fisher_p"] == pytest.approx(0.1) and o5["continuous"]["mann_whitney_p"] == pytest.approx(0.1)
    assert (o6["mutated"]["cr_cri"]["count"], o6["mutated"]["n"], o6["unmutated"]["cr_cri"]["count"], o6["unmutated"]["n"]) == (0, 2, 3, 4)


def test_survival_by_mrd_status_and_safety(ledger: TrialLedger, trial: Trial) -> None:
    o = objectives(ledger)
    survival = o["O7"]["survival"]
    assert (survival["mrd_negative"]["n"], survival["mrd_negative"]["deaths"]) == (1, 1)
    assert (survival["never_mrd_negative"]["n"], survival["never_mrd_negative"]["deaths"]) == (5, 2)
    o8 = o["O8"]
    assert (o8["adverse_events"], o8["grade_3_or_more"]["count"], o8["dose_limiting"]["count"]) == (1, 1, 1)
    (rash,) = o8["by_term"]
    assert rash["worst_grade"]["3"] == 1 and rash["entry_ids"] == [trial.ids["P4 rash"]]


def test_the_report_as_of_before_a_late_response_was_recorded_counts_it_not(ledger: TrialLedger, trial: Trial) -> None:
    before = objectives(ledger, as_of=trial.before_p4_response)
    assert before["O2"]["overall"]["cr_cri"]["count"] == 2 and "P4" not in before["O2"]["overall"]["cr_cri"]["patients"]
    assert {s["patient_id"] for s in before["O3"]["subjects"]} == {"P1", "P3"}
    assert objectives(ledger)["O2"]["overall"]["cr_cri"]["count"] == 3


def test_the_report_on_a_clinical_date_counts_only_what_had_happened_by_then(ledger: TrialLedger, trial: Trial) -> None:
    early = report_document(ledger, valid_on=D("2016-02-01"))
    assert early["patients"]["enrolled"] == 3  # P4-P6 enrolled on 02-08
    assert {trial.ids[f"P{n} enrolled"] for n in (1, 2, 3)} <= set(early["patients"]["entry_ids"])
    assert trial.ids["P4 enrolled"] not in early["patients"]["entry_ids"]
    assert early["objectives"]["O2"]["overall"]["cr_cri"]["count"] == 2
    assert early["objectives"]["O4"]["deaths"] == 0


def test_sdtm_datasets_have_the_standard_variables_and_trace_each_row_to_its_entry(ledger: TrialLedger, trial: Trial) -> None:
    sets = {s.domain: s for s in sdtm.datasets(gather(ledger, valid_on=LATER), "NCT02311998")}
    assert {"USUBJID", "RFSTDTC", "DTHDTC", "DTHFL", "SEX", "ARMCD"} <= set(sets["DM"].columns)
    assert {"EXTRT", "EXDOSE", "EXDOSU", "EXSTDTC"} <= set(sets["EX"].columns)
    assert {"AETERM", "AETOXGR", "AEREL", "AESER"} <= set(sets["AE"].columns)
    assert {"RSTESTCD", "RSORRES", "RSDTC"} <= set(sets["RS"].columns)
    assert {"DSDECOD", "DSSTDTC"} <= set(sets["DS"].columns)
    (rash,) = sets["AE"].rows
    assert (rash["USUBJID"], rash["AETOXGR"], rash["AEREL"], rash["ENTRYID"]) == ("NCT02311998-P4", "3", "POSSIBLE", trial.ids["P4 rash"])
    deaths = {r["USUBJID"]: r["DTHDTC"] for r in sets["DM"].rows if r["DTHFL"] == "Y"}
    assert deaths == {"NCT02311998-P1": "2016-07-01", "NCT02311998-P2": "2016-04-30", "NCT02311998-P5": "2016-03-20"}
    assert len(sets["EX"].rows) == 6
    progression = [r for r in sets["DS"].rows if r["DSDECOD"] == "PROGRESSIVE DISEASE"]
    assert [r["ENTRYID"] for r in progression] == [trial.ids["P2 end"]]
