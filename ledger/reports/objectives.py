"""The protocol's objectives O1–O8, computed from the per-patient analysis records.

``report_document(ledger, as_of, valid_on)`` answers every objective as of a transaction time
and a clinical date. Every number carries what it was computed from: a rate lists the patients
it counts (``patients``) and the entries behind them (``entry_ids``); a Kaplan–Meier estimate
lists its subjects with the entries that start and end each time (``subjects``); each objective
lists all its entries (``sources``). Definitions: docs/report.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from ledger.application import TrialLedger
from ledger.queries import strata
from ledger.reports.data import Dated, PatientRecord, TrialData, gather
from ledger.reports.estimators import KaplanMeier, clopper_pearson, fisher_exact, kaplan_meier, logrank, mann_whitney, median

PHASES = ("I", "II")
ONE_YEAR_DAYS = 365
#: the days of the numbers-at-risk rows under the survival curves
AT_RISK_DAYS = (0, 90, 180, 270, 365, 545, 730)
#: attributions that count an adverse event as related to treatment
RELATED = ("POSSIBLE", "PROBABLE", "DEFINITE")


def report_document(ledger: TrialLedger, as_of: datetime | None = None, valid_on: date | None = None, data: TrialData | None = None) -> dict[str, Any]:
    """Every objective as of ``as_of`` (transaction time) on ``valid_on`` (clinical date); ``data``: already gathered."""
    data = data or gather(ledger, as_of, valid_on)
    return {
        "trial": ledger.protocol.trial_id,
        "protocol_version": ledger.protocol.version,
        "as_of": as_of,
        "valid_on": data.valid_on,
        "patients": _population(data),
        "objectives": {
            "O1": o1_escalation(ledger, data),
            "O2": o2_response(data),
            "O3": o3_duration_of_response(data),
            "O4": o4_overall_survival(data),
            "O5": o5_cd22(data),
            "O6": o6_abl_mutations(data),
            "O7": o7_mrd(data),
            "O8": o8_safety(data),
        },
    }


# --- O1 -------------------------------------------------------------------------------------


def o1_escalation(ledger: TrialLedger, data: TrialData) -> dict[str, Any]:
    """Escalation history per stratum: the 3+3 fold of ``escalation show``, with its DLT list."""
    by_id = {p.patient_id: p for p in data.patients}
    documents: list[dict[str, Any]] = []
    for name in strata(ledger, data.as_of):
        s = ledger.stratum_state_on(name, ledger.load_escalation(name, data.as_of), valid_on=data.valid_on, as_of=data.as_of)
        levels: list[dict[str, Any]] = []
        for lv in s.levels:
            evs = [e for e in s.evaluations if e.dose_mg == lv.dose_mg]
            decided = [d for d in s.decisions if d.dose_mg == lv.dose_mg]
            levels.append(
                {
                    "dose_mg": lv.dose_mg,
                    "patients": lv.patients,
                    "evaluable": lv.evaluable,
                    "dlts": lv.dlts,
                    "decision": lv.decision,
                    "patient_ids": [e.patient_id for e in evs],
                    "dlt_patient_ids": [e.patient_id for e in evs if e.dlt],
                    "entry_ids": sorted({i for e in evs for i in e.basis} | {d.entry_id for d in decided}),
                }
            )
        assigned = {e.patient_id: e.dose_mg for e in s.evaluations}
        dlts: list[dict[str, Any]] = [
            {
                "patient_id": pid,
                "dose_mg": dose,
                "term": t.term,
                "grade": t.grade,
                "attribution": t.attribution,
                "onset_on": t.onset_on,
                "cycle_day": _cycle1_day(by_id.get(pid), t.onset_on),
                "declared": t.declared_dlt,
                "entry_id": t.entry_id,
            }
            for pid, dose in assigned.items()
            if pid in by_id
            for t in by_id[pid].state.toxicities
            if t.dlt
        ]
        decisions = [
            {"entry_id": d.entry_id, "decided_on": d.decided_on, "dose_mg": d.dose_mg, "decision": d.decision, "mtd_mg": d.mtd_mg}
            for d in s.decisions
        ]
        documents.append(
            {
                "stratum": name,
                "status": s.status,
                "mtd_mg": s.mtd_mg,
                "current_dose_mg": s.current_dose_mg,
                "levels": levels,
                "decisions": decisions,
                "dlts": dlts,
                "sources": sorted({i for lv_doc in levels for i in lv_doc["entry_ids"]} | {d["entry_id"] for d in dlts}),
            }
        )
    return {"strata": documents, "sources": sorted({i for d in documents for i in d["sources"]})}


def _cycle1_day(record: PatientRecord | None, on: date) -> int | None:
    start = record.state.cycle1_started_on if record else None
    return (on - start).days + 1 if start else None


# --- O2 -------------------------------------------------------------------------------------


def o2_response(data: TrialData) -> dict[str, Any]:
    """Best overall response per patient; CR/CRi, CCyR and MRD-negativity rates with exact intervals."""
    groups = {"overall": response_rates(data.treated())}
    by_phase = {phase: response_rates(data.treated(phase)) for phase in PHASES}
    best = [
        {
            "patient_id": p.patient_id,
            "phase": p.phase,
            "best_response": p.best_response_value,
            "assessed_on": p.best_response.on if p.best_response else None,
            "entry_id": p.best_response.entry_id if p.best_response else None,
            "ccyr": p.ccyr is not None,
            "mrd_negative": p.mrd_negative is not None,
        }
        for p in data.treated()
    ]
    return {**groups, "by_phase": by_phase, "best_response": best, "sources": sorted(_union(groups["overall"]))}


def response_rates(patients: list[PatientRecord]) -> dict[str, Any]:
    counts: dict[str, int] = defaultdict(int)
    for p in patients:
        counts[p.best_response_value or "NOT_ASSESSED"] += 1
    return {
        **population(patients),
        "cr_cri": rate(patients, lambda p: p.first_cr),
        "ccyr": rate(patients, lambda p: p.ccyr),
        "mrd_negative": rate(patients, lambda p: p.mrd_negative),
        "best_response_counts": dict(counts),
    }


def population(patients: list[PatientRecord]) -> dict[str, Any]:
    """A denominator: the treated patients, with their enrollment and first-treatment entries."""
    return {
        "n": len(patients),
        "patients_in": [p.patient_id for p in patients],
        "population_entry_ids": enrollment_and_treatment_entries(patients),
    }


def enrollment_and_treatment_entries(patients: list[PatientRecord]) -> list[str]:
    """The patients' enrollment and first-treatment entry ids, sorted."""
    return sorted({p.enrolled.entry_id for p in patients} | {p.treated.entry_id for p in patients if p.treated})


def rate(patients: list[PatientRecord], fact: Callable[[PatientRecord], Dated | None]) -> dict[str, Any]:
    """How many of ``patients`` have ``fact``, with the exact 95% interval and the entries that show it."""
    shown = {p.patient_id: d for p in patients if (d := fact(p)) is not None}
    n, count = len(patients), len(shown)
    ci = clopper_pearson(count, n)
    return {
        "count": count,
        "n": n,
        "rate": count / n if n else None,
        "ci95": ci.as_list() if ci else None,
        "patients": sorted(shown),
        "entry_ids": sorted(d.entry_id for d in shown.values()),
    }


# --- O3, O4 ---------------------------------------------------------------------------------


def o3_duration_of_response(data: TrialData) -> dict[str, Any]:
    """Duration of response: first CR/CRi to relapse, progression or death; censored at the last contact."""
    responders = [(p, d) for p in data.treated() if (d := p.response_duration()) is not None]
    subjects = [_subject(p, p.first_cr, d) for p, d in responders if p.first_cr]
    doc = survival_summary(subjects)
    return {**doc, "relapses_or_deaths": doc.pop("events"), "sources": _subject_sources(subjects)}


def o4_overall_survival(data: TrialData) -> dict[str, Any]:
    """Overall survival from enrollment; censored at the last day known alive."""
    subjects = [_subject(p, p.enrolled, p.survival()) for p in data.treated()]
    doc = survival_summary(subjects)
    return {**doc, "deaths": doc.pop("events"), "sources": _subject_sources(subjects)}


def _subject(p: PatientRecord, start: Dated, end: tuple[int, bool, Dated]) -> dict[str, Any]:
    days, event, last = end
    return {
        "patient_id": p.patient_id,
        "phase": p.phase,
        "days": days,
        "event": event,
        "from_on": start.on,
        "to_on": last.on,
        "from_entry_id": start.entry_id,
        "to_entry_id": last.entry_id,
    }


def survival_summary(subjects: list[dict[str, Any]]) -> dict[str, Any]:
    """n, events, the Kaplan–Meier median and 1-year estimate with their intervals, numbers at risk, the curve."""
    days = [float(s["days"]) for s in subjects]
    km = kaplan_meier(days, [s["event"] for s in subjects])
    doc: dict[str, Any] = {"n": len(subjects), "events": sum(1 for s in subjects if s["event"])}
    doc.update(_km_figures(km, days))
    doc["subjects"] = subjects
    return doc


def _km_figures(km: KaplanMeier | None, days: list[float]) -> dict[str, Any]:
    if km is None:
        return {"median_days": None, "median_ci95": None, "one_year": {"estimate": None, "ci95": None}, "at_risk": [], "curve": []}
    one_year: dict[str, Any] = {"estimate": None, "ci95": None}
    if max(days) >= ONE_YEAR_DAYS or km.survival[-1] == 0.0:  # followed to a year, or no one left alive before it
        estimate, ci = km.at(ONE_YEAR_DAYS)
        one_year = {"estimate": estimate, "ci95": ci.as_list() if estimate < 1.0 else None}  # no event yet: no interval
    return {
        "median_days": km.median,
        "median_ci95": km.median_ci.as_list(),
        "one_year": one_year,
        "at_risk": [{"day": t, "at_risk": km.at_risk(t, days)} for t in AT_RISK_DAYS],
        "curve": [
            {"day": t, "survival": s, "ci95": [lo, hi]} for t, s, lo, hi in zip(km.times, km.survival, km.lower, km.upper, strict=True)
        ],
    }


def _subject_sources(subjects: list[dict[str, Any]]) -> list[str]:
    return sorted({s["from_entry_id"] for s in subjects} | {s["to_entry_id"] for s in subjects})


# --- O5, O6, O7 -----------------------------------------------------------------------------


def o5_cd22(data: TrialData) -> dict[str, Any]:
    """Response (CR/CRi) by pre-treatment CD22 expression: above and at-or-below the median, and continuous."""
    treated = [p for p in data.treated() if p.state.cd22_percent is not None]
    cut = median([_cd22(p) for p in treated])
    high = [p for p in treated if cut is not None and _cd22(p) > cut]
    low = [p for p in treated if p not in high]
    responders = [_cd22(p) for p in treated if p.first_cr]
    others = [_cd22(p) for p in treated if not p.first_cr]
    groups = {"above_median": _response_group(high), "at_or_below_median": _response_group(low)}
    return {
        "median_cd22_percent": cut,
        **groups,
        "fisher_p": fisher_exact(_two_by_two(high, low)),
        "continuous": {
            "median_cd22_responders": median(responders),
            "median_cd22_non_responders": median(others),
            "mann_whitney_p": mann_whitney(responders, others),
            "patients": [
                {"patient_id": p.patient_id, "cd22_percent": _cd22(p), "cr_cri": p.first_cr is not None, "entry_id": p.enrolled.entry_id}
                for p in treated
            ],
        },
        "sources": sorted(_union(groups["above_median"]) | _union(groups["at_or_below_median"])),
    }


def _cd22(p: PatientRecord) -> float:
    return float(p.state.cd22_percent or 0.0)


def o6_abl_mutations(data: TrialData) -> dict[str, Any]:
    """Response by pre-treatment ABL kinase-domain mutation status (any mutation against none)."""
    mutated = [p for p in data.treated() if p.mutated]
    unmutated = [p for p in data.treated() if not p.mutated]
    groups = {"mutated": _response_group(mutated), "unmutated": _response_group(unmutated)}
    return {
        **groups,
        "fisher_p": fisher_exact(_two_by_two(mutated, unmutated)),
        "mutations": [
            {"patient_id": p.patient_id, "mutations": list(p.state.abl_mutations), "cr_cri": p.first_cr is not None, "entry_id": p.enrolled.entry_id}
            for p in mutated
        ],
        "sources": sorted(_union(groups["mutated"]) | _union(groups["unmutated"])),
    }


def _response_group(patients: list[PatientRecord]) -> dict[str, Any]:
    return {**population(patients), "cr_cri": rate(patients, lambda p: p.first_cr), "ccyr": rate(patients, lambda p: p.ccyr)}


def _two_by_two(a: list[PatientRecord], b: list[PatientRecord]) -> list[list[int]]:
    def row(group: list[PatientRecord]) -> list[int]:
        responders = sum(1 for p in group if p.first_cr)
        return [responders, len(group) - responders]

    return [row(a), row(b)]


def o7_mrd(data: TrialData) -> dict[str, Any]:
    """MRD status over time, and overall survival of patients who became MRD-negative against the others."""
    treated = data.treated()
    negative = [p for p in treated if p.mrd_negative]
    other = [p for p in treated if not p.mrd_negative]
    groups = {
        "mrd_negative": survival_summary([_subject(p, p.enrolled, p.survival()) for p in negative]),
        "never_mrd_negative": survival_summary([_subject(p, p.enrolled, p.survival()) for p in other]),
    }
    for doc in groups.values():
        doc["deaths"] = doc.pop("events")
    series: list[dict[str, Any]] = [
        {
            "patient_id": p.patient_id,
            "assessments": [
                {"assessed_on": a.assessed_on, "mrd": a.mrd, "mrd_level": a.mrd_level, "entry_id": a.entry_id}
                for a in sorted(p.state.assessments, key=lambda a: a.assessed_on)
                if a.mrd is not None
            ],
        }
        for p in treated
    ]
    a, b = groups["mrd_negative"]["subjects"], groups["never_mrd_negative"]["subjects"]
    p_value = logrank([s["days"] for s in a], [s["event"] for s in a], [s["days"] for s in b], [s["event"] for s in b])
    sources = {s for g in groups.values() for s in _subject_sources(g["subjects"])}
    sources |= {x["entry_id"] for s in series for x in s["assessments"]}
    return {"mrd_status": series, "survival": {**groups, "logrank_p": p_value}, "sources": sorted(sources)}


# --- O8 -------------------------------------------------------------------------------------


def o8_safety(data: TrialData) -> dict[str, Any]:
    """Adverse events by term and worst grade, DLTs, serious events and the grade ≥3 rate, overall and per phase."""
    overall = safety(data.treated())
    return {**overall, "by_phase": {phase: safety(data.treated(phase)) for phase in PHASES}, "sources": sorted(_union(overall))}


def safety(patients: list[PatientRecord]) -> dict[str, Any]:
    worst: dict[str, dict[str, Any]] = {}
    for p in patients:
        for t in p.state.toxicities:
            term = worst.setdefault(t.term, {"grades": {}, "entries": [], "serious": set(), "related": set(), "events": 0})
            term["grades"][p.patient_id] = max(term["grades"].get(p.patient_id, 0), t.grade)
            term["entries"].append(t.entry_id)
            term["events"] += 1
            if t.serious:
                term["serious"].add(p.patient_id)
            if t.attribution in RELATED:
                term["related"].add(p.patient_id)
    terms = []
    for name, seen in worst.items():
        grades: dict[str, int] = seen["grades"]
        terms.append(
            {
                "term": name,
                "patients": len(grades),
                "events": seen["events"],
                "worst_grade": {str(g): sum(1 for v in grades.values() if v == g) for g in range(1, 6)},
                "grade_3_or_more": sum(1 for v in grades.values() if v >= 3),
                "related": len(seen["related"]),
                "serious": len(seen["serious"]),
                "entry_ids": sorted(seen["entries"]),
            }
        )
    terms.sort(key=lambda t: (-t["grade_3_or_more"], -t["patients"], t["term"]))
    events = [(p, t) for p in patients for t in p.state.toxicities]
    return {
        **population(patients),
        "adverse_events": len(events),
        "by_term": terms,
        "grade_3_or_more": rate(patients, lambda p: _first_toxicity(p, lambda t: t.grade >= 3)),
        "serious": rate(patients, lambda p: _first_toxicity(p, lambda t: t.serious)),
        "dose_limiting": rate(patients, lambda p: _first_toxicity(p, lambda t: t.dlt)),
        "serious_events": [_event(p, t) for p, t in events if t.serious],
        "dlt_events": [_event(p, t) for p, t in events if t.dlt],
        "entry_ids": sorted({t.entry_id for _, t in events}),
    }


def _first_toxicity(p: PatientRecord, which: Callable[[Any], bool]) -> Dated | None:
    found = sorted((t for t in p.state.toxicities if which(t)), key=lambda t: t.onset_on)
    return Dated(found[0].onset_on, found[0].entry_id) if found else None


def _event(p: PatientRecord, t: Any) -> dict[str, Any]:
    return {
        "patient_id": p.patient_id,
        "phase": p.phase,
        "term": t.term,
        "grade": t.grade,
        "attribution": t.attribution,
        "serious": t.serious,
        "dlt": t.dlt,
        "onset_on": t.onset_on,
        "resolved_on": t.resolved_on,
        "entry_id": t.entry_id,
    }


# --- shared ---------------------------------------------------------------------------------


def _population(data: TrialData) -> dict[str, Any]:
    """Patients enrolled and treated, overall and per phase, with their enrollment and first-treatment entries."""
    by_phase = {
        phase: {"enrolled": sum(1 for p in data.patients if p.phase == phase), "treated": len(data.treated(phase))} for phase in PHASES
    }
    entry_ids = enrollment_and_treatment_entries(data.patients)
    return {"enrolled": len(data.patients), "treated": len(data.treated()), "by_phase": by_phase, "entry_ids": entry_ids}


def _union(doc: Any) -> set[str]:
    """Every entry id named anywhere in a document (keys ``entry_ids``, ``population_entry_ids``, ``entry_id``)."""
    found: set[str] = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("entry_ids", "population_entry_ids") and isinstance(value, list):
                found.update(value)
            elif key == "entry_id" and isinstance(value, str):
                found.add(value)
            else:
                found |= _union(value)
    elif isinstance(doc, list):
        for item in doc:
            found |= _union(item)
    return found

