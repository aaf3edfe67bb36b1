"""The report as text for a terminal: one short block per objective (``ledger report``)."""

from __future__ import annotations

from typing import Any

from ledger.reports.html import days, interval, pct


def text_report(doc: dict[str, Any]) -> str:
    o = doc["objectives"]
    lines = [
        f"{doc['trial']} objectives report: clinical data to {doc['valid_on']}, as recorded by {doc['as_of'] or 'now'}",
        f"{doc['patients']['enrolled']} enrolled, {doc['patients']['treated']} treated "
        f"(phase I {doc['patients']['by_phase']['I']['treated']}, phase II {doc['patients']['by_phase']['II']['treated']})",
        "",
        "O1 escalation (phase I)",
    ]
    for s in o["O1"]["strata"]:
        lines.append(f"  stratum {s['stratum']}: {s['status']}, MTD {s['mtd_mg'] if s['mtd_mg'] is not None else 'not declared'}")
        for lv in s["levels"]:
            decision = lv["decision"] or "-"
            lines.append(f"    {lv['dose_mg']:>4} mg  patients {lv['patients']}  evaluable {lv['evaluable']}  DLTs {lv['dlts']}  decision {decision}")
        for d in s["dlts"]:
            lines.append(f"    DLT {d['patient_id']} at {d['dose_mg']} mg: {d['term']}, grade {d['grade']}, cycle 1 day {d['cycle_day']}")
    lines.append("O2 response (treated patients; exact 95% CI)")
    for name, g in (("overall", o["O2"]["overall"]), ("phase I", o["O2"]["by_phase"]["I"]), ("phase II", o["O2"]["by_phase"]["II"])):
        lines.append(f"  {name:<9} CR/CRi {pct(g['cr_cri'])}; CCyR {pct(g['ccyr'])}; MRD-negative {pct(g['mrd_negative'])}")
    for key, title, events in (("O3", "O3 duration of response", "relapses_or_deaths"), ("O4", "O4 overall survival", "deaths")):
        s = o[key]
        one = s["one_year"]["estimate"]
        lines.append(
            f"{title}: n {s['n']}, events {s[events]}, median {days(s['median_days'])} (95% CI {interval(s['median_ci95'])}), "
            f"1 year {'-' if one is None else f'{100 * one:.0f}%'} (95% CI {interval(s['one_year']['ci95'], 100, '%')})"
        )
    o5 = o["O5"]
    lines.append(f"O5 CR/CRi by CD22 (median {o5['median_cd22_percent']}%): above {pct(o5['above_median']['cr_cri'])}; "
                 f"at or below {pct(o5['at_or_below_median']['cr_cri'])}")
    lines.append(f"O6 CR/CRi by ABL mutation: mutated {pct(o['O6']['mutated']['cr_cri'])}; unmutated {pct(o['O6']['unmutated']['cr_cri'])}")
    s7 = o["O7"]["survival"]
    lines.append(f"O7 survival by MRD: MRD-negative n {s7['mrd_negative']['n']}, deaths {s7['mrd_negative']['deaths']}; "
                 f"never MRD-negative n {s7['never_mrd_negative']['n']}, deaths {s7['never_mrd_negative']['deaths']}")
    o8 = o["O8"]
    lines.append(f"O8 safety: {o8['adverse_events']} adverse events; grade >=3 {pct(o8['grade_3_or_more'])}; serious {pct(o8['serious'])}")
    for t in o8["by_term"][:10]:
        lines.append(f"  {t['term']:<40} patients {t['patients']:>3}  grade >=3 {t['grade_3_or_more']:>3}")
    lines.append("Entry ids behind every figure: ledger report --json; definitions: docs/report.md")
    return "\n".join(lines)
