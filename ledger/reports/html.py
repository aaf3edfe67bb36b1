"""The report as one self-contained HTML page: every objective's tables and the three figures.

Figures are embedded as SVG data URIs, so the page is a single file a sponsor can mail or
archive; entry ids are left to ``--json`` (the page says so) to keep the tables readable.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from ledger.reports.figures import Rendered

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #222; line-height: 1.4; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 2px solid #0072B2; padding-bottom: 0.2rem; }
h3 { margin-top: 1.4rem; font-size: 1.05rem; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: left; vertical-align: top; }
th { background: #f1f5f9; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.meta { color: #555; font-size: 0.9rem; } figure { margin: 1rem 0; } figure img { width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.85rem; } .note { color: #555; font-size: 0.85rem; }
"""


def page(document: dict[str, Any], figures: list[Rendered]) -> str:
    o = document["objectives"]
    shown = {f.name: f for f in figures}
    as_of = document["as_of"] or "now"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(document['trial'])} objectives report, {escape(str(document['valid_on']))}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(document['trial'])}: trial objectives report</h1>",
        f'<p class="meta">Clinical data dated on or before <b>{escape(str(document["valid_on"]))}</b>, as recorded by <b>{escape(str(as_of))}</b>; '
        f"protocol version {escape(document['protocol_version'])}. "
        f"{document['patients']['enrolled']} patients enrolled, {document['patients']['treated']} treated. "
        "Rates are of treated patients with exact (Clopper–Pearson) 95% intervals; survival by Kaplan–Meier with log(−log) 95% intervals. "
        "Every figure traces to the ledger's entry ids in <code>ledger report --json</code>; definitions in docs/report.md.</p>",
        _o1(o["O1"], shown.get("escalation")),
        _o2(o["O2"]),
        _survival_section(
            "O3 · Duration of response", "first CR/CRi to relapse, progression or death; censored at the last contact", o["O3"], "relapses_or_deaths"
        ),
        _survival_section("O4 · Overall survival", "enrollment to death; censored at the last day known alive", o["O4"], "deaths", shown.get("survival")),
        _o5(o["O5"]),
        _o6(o["O6"]),
        _o7(o["O7"]),
        _o8(o["O8"]),
        "<h2>Course of each treated patient</h2>" if "swimmer" in shown else "",
        _figure(shown.get("swimmer")),
        "</body></html>",
    ]
    return "\n".join(parts)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="num">{escape(str(value))}</td>'
    return f"<td>{escape('—' if value is None else str(value))}</td>"


def _figure(f: Rendered | None) -> str:
    if f is None:
        return ""
    data = base64.b64encode(f.svg.encode("utf-8")).decode("ascii")
    return f'<figure><img alt="{escape(f.title)}" src="data:image/svg+xml;base64,{data}"><figcaption>{escape(f.title)}</figcaption></figure>'


def pct(r: dict[str, Any] | None) -> str:
    """``count/n (rate%, 95% CI low–high%)``."""
    if not r or not r.get("n"):
        return "—"
    ci = r.get("ci95") or [None, None]
    low, high = (f"{100 * v:.0f}" if v is not None else "?" for v in ci)
    return f"{r['count']}/{r['n']} ({100 * r['rate']:.0f}%, 95% CI {low}–{high}%)"


def days(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.0f} days"


def interval(ci: list[float | None] | None, scale: float = 1.0, unit: str = "") -> str:
    if not ci or ci == [None, None]:
        return "not estimable"
    low, high = (f"{v * scale:.0f}{unit}" if v is not None else "not reached" for v in ci)
    return f"{low}–{high}"


def _o1(o1: dict[str, Any], figure: Rendered | None) -> str:
    parts = ["<h2>O1 · Safety and maximum tolerated dose (phase I)</h2>"]
    for s in o1["strata"]:
        mtd = f"{s['mtd_mg']} mg" if s["mtd_mg"] is not None else "not declared"
        parts.append(f"<h3>Stratum {escape(s['stratum'])}: {escape(s['status'])}, MTD {escape(mtd)}</h3>")
        parts.append(_table(["dose", "patients", "evaluable", "DLTs", "last decision"],
                            [[f"{lv['dose_mg']} mg", lv["patients"], lv["evaluable"], lv["dlts"], lv["decision"]] for lv in s["levels"]]))
        parts.append(_table(["decided on", "at dose", "decision", "MTD"],
                            [[d["decided_on"], f"{d['dose_mg']} mg", d["decision"], f"{d['mtd_mg']} mg" if d["mtd_mg"] else None] for d in s["decisions"]]))
        parts.append("<p>Dose-limiting toxicities:</p>" + _table(
            ["patient", "dose", "term", "grade", "attribution", "onset", "cycle 1 day"],
            [[d["patient_id"], f"{d['dose_mg']} mg", d["term"], d["grade"], d["attribution"], d["onset_on"], d["cycle_day"]] for d in s["dlts"]],
        ))
    if not o1["strata"]:
        parts.append("<p>No phase I escalation has been recorded.</p>")
    parts.append(_figure(figure))
    return "\n".join(parts)


def _o2(o2: dict[str, Any]) -> str:
    groups = [("overall", o2["overall"]), ("phase I", o2["by_phase"]["I"]), ("phase II", o2["by_phase"]["II"])]
    rows = [[name, g["n"], pct(g["cr_cri"]), pct(g["ccyr"]), pct(g["mrd_negative"])] for name, g in groups]
    best = [[b["patient_id"], b["phase"], b["best_response"] or "not assessed", b["assessed_on"], "yes" if b["ccyr"] else "no",
             "yes" if b["mrd_negative"] else "no"] for b in o2["best_response"]]
    return "\n".join([
        "<h2>O2 · Response</h2>",
        _table(["population", "treated", "CR/CRi", "CCyR", "MRD-negative"], rows),
        "<h3>Best overall response per patient</h3>",
        _table(["patient", "phase", "best response", "assessed on", "CCyR", "MRD-negative"], best),
    ])


def _survival_section(title: str, definition: str, doc: dict[str, Any], events_key: str, figure: Rendered | None = None) -> str:
    one_year = doc["one_year"]
    one = "—" if one_year["estimate"] is None else f"{100 * one_year['estimate']:.0f}% (95% CI {interval(one_year['ci95'], 100, '%')})"
    rows = [[doc["n"], doc[events_key], days(doc["median_days"]), interval(doc["median_ci95"]), one]]
    at_risk = _table(["day"] + [str(r["day"]) for r in doc["at_risk"]], [["at risk"] + [r["at_risk"] for r in doc["at_risk"]]]) if doc["at_risk"] else ""
    return "\n".join([
        f"<h2>{escape(title)}</h2>",
        f'<p class="note">{escape(definition)}.</p>',
        _table(["patients", "events", "median", "95% CI of median (days)", "at 1 year"], rows),
        at_risk,
        _figure(figure),
    ])


def _o5(o5: dict[str, Any]) -> str:
    c = o5["continuous"]
    cut = o5["median_cd22_percent"]
    rows = [
        [f"above the median ({cut:g}%)" if cut is not None else "above the median", o5["above_median"]["n"], pct(o5["above_median"]["cr_cri"])],
        ["at or below the median", o5["at_or_below_median"]["n"], pct(o5["at_or_below_median"]["cr_cri"])],
    ]
    return "\n".join([
        "<h2>O5 · Response by pre-treatment CD22 expression</h2>",
        _table(["CD22 of blasts", "patients", "CR/CRi"], rows),
        f"<p>Fisher's exact test p = {_p(o5['fisher_p'])}. As a continuous value: median CD22 {_num(c['median_cd22_responders'])}% in patients "
        f"with CR/CRi, {_num(c['median_cd22_non_responders'])}% in the others (Mann–Whitney p = {_p(c['mann_whitney_p'])}).</p>",
    ])


def _o6(o6: dict[str, Any]) -> str:
    rows = [[name, g["n"], pct(g["cr_cri"]), pct(g["ccyr"])] for name, g in (("ABL kinase-domain mutation", o6["mutated"]), ("no mutation", o6["unmutated"]))]
    mutations = [[m["patient_id"], ", ".join(m["mutations"]), "yes" if m["cr_cri"] else "no"] for m in o6["mutations"]]
    return "\n".join([
        "<h2>O6 · Response by ABL kinase-domain mutation status</h2>",
        _table(["pre-treatment status", "patients", "CR/CRi", "CCyR"], rows),
        f"<p>Fisher's exact test (CR/CRi) p = {_p(o6['fisher_p'])}.</p>",
        _table(["patient", "mutations", "CR/CRi"], mutations) if mutations else "",
    ])


def _o7(o7: dict[str, Any]) -> str:
    s = o7["survival"]
    rows = []
    for name, key in (("MRD-negative at any assessment", "mrd_negative"), ("never MRD-negative", "never_mrd_negative")):
        g = s[key]
        one = g["one_year"]["estimate"]
        rows.append([name, g["n"], g["deaths"], days(g["median_days"]), "—" if one is None else f"{100 * one:.0f}%"])
    series = [[m["patient_id"], "; ".join(f"{a['assessed_on']}: {a['mrd']}" for a in m["assessments"]) or "not assessed"] for m in o7["mrd_status"]]
    return "\n".join([
        "<h2>O7 · Minimal residual disease and long-term outcome</h2>",
        _table(["group", "patients", "deaths", "median survival", "survival at 1 year"], rows),
        f"<p>Log-rank p = {_p(s['logrank_p'])}. Groups by whether MRD negativity was ever reached (not a landmark analysis: see docs/report.md).</p>",
        "<h3>MRD status over time</h3>",
        _table(["patient", "MRD by flow cytometry"], series),
    ])


def _o8(o8: dict[str, Any]) -> str:
    terms = [
        [t["term"], t["patients"], *(t["worst_grade"][str(g)] for g in range(1, 6)), t["grade_3_or_more"], t["related"], t["serious"]]
        for t in o8["by_term"]
    ]
    groups = [("overall", o8), ("phase I", o8["by_phase"]["I"]), ("phase II", o8["by_phase"]["II"])]
    rates = [[name, g["n"], g["adverse_events"], pct(g["grade_3_or_more"]), pct(g["serious"]), pct(g["dose_limiting"])] for name, g in groups]
    serious = [[e["patient_id"], e["term"], e["grade"], e["attribution"], e["onset_on"]] for e in o8["serious_events"]]
    return "\n".join([
        "<h2>O8 · Safety</h2>",
        _table(["population", "treated", "adverse events", "patients with grade ≥3", "with a serious event", "with a DLT"], rates),
        "<h3>Adverse events by term: patients by worst grade</h3>",
        _table(["term", "patients", "grade 1", "2", "3", "4", "5", "grade ≥3", "related", "serious"], terms),
        "<h3>Serious adverse events</h3>",
        _table(["patient", "term", "grade", "attribution", "onset"], serious) if serious else "<p>None recorded.</p>",
    ])


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}" if value >= 0.001 else "<0.001"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"
