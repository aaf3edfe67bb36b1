"""SDTM-shaped datasets: DM, EX, AE, RS and DS, as CSV and SAS transport (XPORT v5) files.

Rows come from the same folds as the report (``ledger.reports.data``), so an export as of a
date agrees with ``patient show``. Variable names are SDTM's (regulatory.md); every ``--DTC``
is a valid (clinical) date. Each row carries ``ENTRYID``, the ledger entry it was made from,
so a reviewer can trace it back (docs/report.md). XPORT files are written with pyreadstat.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ledger.reports.data import PatientRecord, TrialData

DOMAINS = ("DM", "EX", "AE", "RS", "DS")
END_DECODES = {
    "COMPLETED": "COMPLETED",
    "PROGRESSION": "PROGRESSIVE DISEASE",
    "TOXICITY": "ADVERSE EVENT",
    "TRANSPLANT": "OTHER",
    "WITHDRAWAL": "WITHDRAWAL BY SUBJECT",
    "DEATH": "DEATH",
    "NO_RESPONSE": "LACK OF EFFICACY",
    "INVESTIGATOR": "PHYSICIAN DECISION",
}
RESOLVED, NOT_RESOLVED, FATAL = "RECOVERED/RESOLVED", "NOT RECOVERED/NOT RESOLVED", "FATAL"


@dataclass(frozen=True)
class Dataset:
    domain: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]


def datasets(data: TrialData, study_id: str, without_free_text: bool = False) -> list[Dataset]:
    """The five domains; ``without_free_text`` blanks site, sex and birth year (the sponsor's view)."""
    builders: dict[str, Callable[[TrialData, str], Dataset]] = {"DM": dm, "EX": ex, "AE": ae, "RS": rs, "DS": ds}
    result = [builders[d](data, study_id) for d in DOMAINS]
    if without_free_text:
        for row in result[0].rows:
            row.update(SITEID="", SEX="", BRTHDTC="", AGE=None)
    return result


def write(sets: list[Dataset], directory: Path, xpt: bool = True) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for s in sets:
        path = directory / f"{s.domain.lower()}.csv"
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=s.columns)
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in s.rows)
        written.append(path)
        if xpt:
            written.append(_write_xpt(s, directory / f"{s.domain.lower()}.xpt"))
    return written


def _write_xpt(s: Dataset, path: Path) -> Path:
    import pandas as pd
    import pyreadstat

    frame = pd.DataFrame([[row[c] for c in s.columns] for row in s.rows], columns=list(s.columns))
    for column in s.columns:  # XPORT has numbers and text only; an empty text column stays text
        if frame[column].dtype == object:
            frame[column] = frame[column].map(lambda v: "" if v is None else str(v))
    pyreadstat.write_xport(frame, str(path), file_format_version=5, table_name=s.domain)
    return path


def _usubjid(study_id: str, p: PatientRecord) -> str:
    return f"{study_id}-{p.patient_id}"


def _dtc(value: date | None) -> str:
    return value.isoformat() if value else ""


def _base(study_id: str, domain: str, p: PatientRecord) -> dict[str, Any]:
    return {"STUDYID": study_id, "DOMAIN": domain, "USUBJID": _usubjid(study_id, p)}


def _arm(p: PatientRecord) -> tuple[str, str]:
    dose = p.state.dose_level_mg
    return (f"BOS{dose}INO", f"Bosutinib {dose} mg + inotuzumab ozogamicin") if dose else ("", "")


def dm(data: TrialData, study_id: str) -> Dataset:
    columns = ("STUDYID", "DOMAIN", "USUBJID", "SUBJID", "RFSTDTC", "RFENDTC", "RFXSTDTC", "RFXENDTC", "RFICDTC", "DTHDTC", "DTHFL",
               "SITEID", "BRTHDTC", "AGE", "AGEU", "SEX", "ARMCD", "ARM", "ACTARMCD", "ACTARM", "PHASE", "ENTRYID")
    rows = []
    for p in data.patients:
        s = p.state
        exposure = sorted([d for d, _, _ in s.doses] + [i.given_on for i in s.infusions])
        armcd, arm = _arm(p)
        treated = bool(exposure)
        age = (p.enrolled.on.year - s.birth_year) if s.birth_year else None
        rows.append({
            **_base(study_id, "DM", p), "SUBJID": p.patient_id,
            "RFSTDTC": _dtc(exposure[0]) if treated else "", "RFENDTC": _dtc(p.survival()[2].on),
            "RFXSTDTC": _dtc(exposure[0]) if treated else "", "RFXENDTC": _dtc(exposure[-1]) if treated else "",
            "RFICDTC": _dtc(p.enrolled.on), "DTHDTC": _dtc(p.death.on) if p.death else "", "DTHFL": "Y" if p.death else "",
            "SITEID": s.site or "", "BRTHDTC": str(s.birth_year) if s.birth_year else "", "AGE": age, "AGEU": "YEARS" if age is not None else "",
            "SEX": s.sex or "", "ARMCD": armcd, "ARM": arm,
            "ACTARMCD": armcd if treated else "NOTTRT", "ACTARM": arm if treated else "Not Treated",
            "PHASE": p.phase, "ENTRYID": p.enrolled.entry_id,
        })
    return Dataset("DM", columns, rows)


def ex(data: TrialData, study_id: str) -> Dataset:
    columns = ("STUDYID", "DOMAIN", "USUBJID", "EXSEQ", "EXTRT", "EXDOSE", "EXDOSU", "EXDOSFRM", "EXDOSFRQ", "EXROUTE",
               "EXSTDTC", "EXENDTC", "EXADJ", "VISIT", "EPOCH", "ENTRYID")
    rows = []
    for p in data.patients:
        s = p.state
        given = [(d, "BOSUTINIB", float(mg), "mg", "TABLET", "QD", "ORAL", entry) for d, mg, entry in s.doses]
        given += [(i.given_on, "INOTUZUMAB OZOGAMICIN", i.dose_mg_m2, "mg/m2", "INJECTION", "ONCE", "INTRAVENOUS", i.entry_id) for i in s.infusions]
        for seq, (on, treatment, dose, unit, form, freq, route, entry) in enumerate(sorted(given, key=lambda g: (g[0], g[1])), start=1):
            cycle = s.cycle_on(on)
            reduced = treatment == "BOSUTINIB" and s.dose_level_mg is not None and dose < s.dose_level_mg
            rows.append({
                **_base(study_id, "EX", p), "EXSEQ": seq, "EXTRT": treatment, "EXDOSE": dose, "EXDOSU": unit, "EXDOSFRM": form,
                "EXDOSFRQ": freq, "EXROUTE": route, "EXSTDTC": _dtc(on), "EXENDTC": _dtc(on), "EXADJ": "DOSE REDUCED" if reduced else "",
                "VISIT": f"CYCLE {cycle.number}" if cycle else "", "EPOCH": "TREATMENT", "ENTRYID": entry,
            })
    return Dataset("EX", columns, rows)


def ae(data: TrialData, study_id: str) -> Dataset:
    columns = ("STUDYID", "DOMAIN", "USUBJID", "AESEQ", "AETERM", "AEDECOD", "AESTDTC", "AEENDTC", "AESER", "AETOXGR", "AEREL",
               "AEOUT", "AEDLT", "AECTCV", "ENTRYID")
    rows = []
    for p in data.patients:
        for seq, t in enumerate(sorted(p.state.toxicities, key=lambda t: (t.onset_on, t.term)), start=1):
            outcome = FATAL if t.grade == 5 else RESOLVED if t.resolved_on else NOT_RESOLVED
            rows.append({
                **_base(study_id, "AE", p), "AESEQ": seq, "AETERM": t.term, "AEDECOD": t.term, "AESTDTC": _dtc(t.onset_on),
                "AEENDTC": _dtc(t.resolved_on), "AESER": "Y" if t.serious else "N", "AETOXGR": str(t.grade), "AEREL": t.attribution,
                "AEOUT": outcome, "AEDLT": "Y" if t.dlt else "N", "AECTCV": t.ctcae_version, "ENTRYID": t.entry_id,
            })
    return Dataset("AE", columns, rows)


def rs(data: TrialData, study_id: str) -> Dataset:
    columns = ("STUDYID", "DOMAIN", "USUBJID", "RSSEQ", "RSTESTCD", "RSTEST", "RSCAT", "RSORRES", "RSSTRESC", "RSDTC", "RSEVAL", "VISIT", "ENTRYID")
    tests = (("OVRLRESP", "Overall Response", "response"), ("CYTORESP", "Cytogenetic Response", "cytogenetic"), ("MRDSTAT", "Minimal Residual Disease", "mrd"))
    rows = []
    for p in data.patients:
        seq = 0
        for a in sorted(p.state.assessments, key=lambda a: a.assessed_on):
            cycle = p.state.cycle_on(a.assessed_on)
            for code, name, attribute in tests:
                value = getattr(a, attribute)
                if value is None:
                    continue
                seq += 1
                rows.append({
                    **_base(study_id, "RS", p), "RSSEQ": seq, "RSTESTCD": code, "RSTEST": name, "RSCAT": "LEUKEMIA RESPONSE",
                    "RSORRES": value, "RSSTRESC": value, "RSDTC": _dtc(a.assessed_on), "RSEVAL": "INVESTIGATOR",
                    "VISIT": f"CYCLE {cycle.number}" if cycle else "", "ENTRYID": a.entry_id,
                })
    return Dataset("RS", columns, rows)


def ds(data: TrialData, study_id: str) -> Dataset:
    columns = ("STUDYID", "DOMAIN", "USUBJID", "DSSEQ", "DSTERM", "DSDECOD", "DSCAT", "DSSTDTC", "EPOCH", "ENTRYID")
    rows = []
    for p in data.patients:
        s = p.state
        events = [("ENROLLED", "ENROLLED", "PROTOCOL MILESTONE", p.enrolled.on, "SCREENING", p.enrolled.entry_id)]
        if s.treatment_ended_on and s.end_reason and s.treatment_end_entry_id:
            term = f"END OF TREATMENT: {s.end_reason.replace('_', ' ')}"
            events.append((term, END_DECODES.get(s.end_reason, "OTHER"), "DISPOSITION EVENT", s.treatment_ended_on, "TREATMENT", s.treatment_end_entry_id))
        if s.lost_on and s.lost_entry_id:
            events.append(("LOST TO FOLLOW-UP", "LOST TO FOLLOW-UP", "DISPOSITION EVENT", s.lost_on, "FOLLOW-UP", s.lost_entry_id))
        if p.death:
            events.append(("DEATH", "DEATH", "DISPOSITION EVENT", p.death.on, "FOLLOW-UP", p.death.entry_id))
        for seq, (term, decode, category, on, epoch, entry) in enumerate(sorted(events, key=lambda e: e[3]), start=1):
            rows.append({**_base(study_id, "DS", p), "DSSEQ": seq, "DSTERM": term, "DSDECOD": decode, "DSCAT": category,
                         "DSSTDTC": _dtc(on), "EPOCH": epoch, "ENTRYID": entry})
    return Dataset("DS", columns, rows)
