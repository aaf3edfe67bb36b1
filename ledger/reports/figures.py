"""The report's figures (matplotlib, no display): swimmer plot, Kaplan–Meier curves, escalation chart.

Each function takes the report's own data (analysis records or the report document) and
returns a ``matplotlib.figure.Figure`` built without pyplot, so nothing depends on a display
or on global state; ``save`` writes it as PNG and SVG. matplotlib is imported here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.reports.data import PatientRecord, TrialData

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DAYS_PER_MONTH = 365.25 / 12
#: one colour per meaning, readable in print and by most colour-blind readers (Okabe–Ito)
BLUE, ORANGE, GREEN, RED, GREY, PURPLE, SKY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#999999", "#CC79A7", "#56B4E9"
RESPONSE_MARKERS = {"CR": ("*", GREEN), "CRi": ("*", SKY), "CRp": ("D", SKY), "MLFS": ("D", GREY), "PR": ("^", ORANGE), "NR": ("v", GREY), "PD": ("X", RED)}
END_LABELS = {
    "COMPLETED": "completed",
    "PROGRESSION": "progression",
    "TOXICITY": "toxicity",
    "TRANSPLANT": "transplant",
    "WITHDRAWAL": "withdrawal",
    "DEATH": "death",
    "NO_RESPONSE": "no response",
    "INVESTIGATOR": "investigator",
}


@dataclass(frozen=True)
class Rendered:
    name: str
    title: str
    png: bytes
    svg: str


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    figure.set_facecolor("white")
    return figure


def render(name: str, title: str, figure: Figure) -> Rendered:
    import io

    png, svg = io.BytesIO(), io.StringIO()
    figure.savefig(png, format="png", dpi=150)
    figure.savefig(svg, format="svg", metadata={"Date": None})  # no date: the same data draws the same file
    return Rendered(name, title, png.getvalue(), svg.getvalue())


def save(rendered: list[Rendered], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for r in rendered:
        (directory / f"{r.name}.png").write_bytes(r.png)
        (directory / f"{r.name}.svg").write_text(r.svg, encoding="utf-8")
        written += [directory / f"{r.name}.png", directory / f"{r.name}.svg"]
    return written


def all_figures(data: TrialData, document: dict[str, Any]) -> list[Rendered]:
    return [
        render("swimmer", "Course of every treated patient", swimmer(data)),
        render("survival", "Overall survival (Kaplan–Meier)", survival(document)),
        render("escalation", "Phase I dose escalation (3+3)", escalation(document)),
    ]


# --- swimmer plot ---------------------------------------------------------------------------


def swimmer(data: TrialData) -> Figure:
    """One bar per treated patient from enrollment to the last contact or death: cycles, responses,
    grade ≥3 toxicities, the end of treatment and its reason, death."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MultipleLocator

    patients = sorted(data.treated(), key=lambda p: (p.phase, -_months(p, p.survival()[2].on), p.patient_id))
    figure = _figure(11, 1.6 + 0.42 * max(len(patients), 1))
    ax = figure.add_subplot()
    longest = max((_months(p, p.survival()[2].on) for p in patients), default=1.0)
    for y, p in enumerate(reversed(patients)):
        _swim_lane(ax, y, p, longest)
    ax.set_yticks(range(len(patients)), [f"{p.patient_id} ({p.phase})" for p in reversed(patients)])
    phase_2 = sum(1 for p in patients if p.phase == "II")
    if 0 < phase_2 < len(patients):  # a rule between the phases (phase II at the bottom)
        ax.axhline(phase_2 - 0.5, color="#888888", linewidth=0.8, linestyle=":")
    ax.set_xlabel("months since enrollment")
    ax.xaxis.set_major_locator(MultipleLocator(3))
    ax.set_xlim(0, longest * 1.12 + 0.5)
    ax.set_ylim(-0.7, len(patients) - 0.3)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"Course of each treated patient (clinical data to {data.valid_on.isoformat()})", loc="left", fontsize=11)
    handles = [
        Patch(color=BLUE, label="on treatment (cycles)"),
        Patch(color="#c9d9ea", label="after treatment"),
        *(Line2D([], [], marker=m, color=c, linestyle="", markersize=9, label=r) for r, (m, c) in RESPONSE_MARKERS.items()),
        Line2D([], [], marker="|", color="black", linestyle="", markersize=12, markeredgewidth=2, label="end of treatment"),
        Line2D([], [], marker="o", color=RED, markerfacecolor="white", linestyle="", markersize=7, label="grade ≥3 toxicity"),
        Line2D([], [], marker="x", color="black", linestyle="", markersize=9, markeredgewidth=2, label="death"),
        Line2D([], [], marker=">", color=GREY, linestyle="", markersize=7, label="alive at last contact"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncol=7, frameon=False, fontsize=8)
    return figure


def _swim_lane(ax: Axes, y: int, p: PatientRecord, longest: float) -> None:
    state = p.state
    _, died, last = p.survival()
    end_of_bar = _months(p, last.on)
    ended = _months(p, state.treatment_ended_on) if state.treatment_ended_on else end_of_bar
    ax.barh(y, end_of_bar, height=0.5, color="#c9d9ea", zorder=1)
    cycles = sorted(state.cycles, key=lambda c: c.started_on)
    for i, c in enumerate(cycles):
        start = _months(p, c.started_on)
        stop = _months(p, cycles[i + 1].started_on) if i + 1 < len(cycles) else ended
        ax.barh(y, max(stop - start, 0.05), left=start, height=0.5, color=BLUE if i % 2 == 0 else "#2a8bc9", edgecolor="white", linewidth=0.8, zorder=2)
    for a in state.assessments:
        marker, colour = RESPONSE_MARKERS.get(a.response, ("o", GREY))
        ax.plot(_months(p, a.assessed_on), y + 0.36, marker=marker, color=colour, markersize=10 if marker == "*" else 7, zorder=4, clip_on=False)
    for t in state.toxicities:
        if t.grade >= 3:
            ax.plot(_months(p, t.onset_on), y - 0.36, marker="o", color=RED, markerfacecolor="white", markersize=6, zorder=4)
    if state.treatment_ended_on is not None:
        ax.plot(ended, y, marker="|", color="black", markersize=14, markeredgewidth=2, zorder=5)
        label = END_LABELS.get(state.end_reason or "", (state.end_reason or "").lower())
        at_bar_end = end_of_bar - ended < longest * 0.1  # no room inside the bar: after its end marker
        ax.annotate(
            label, (end_of_bar if at_bar_end else ended, y), xytext=(14 if at_bar_end else 4, -1), textcoords="offset points",
            fontsize=7, va="center", color="#333333", zorder=6,
        )
    if died:
        ax.plot(end_of_bar, y, marker="x", color="black", markersize=9, markeredgewidth=2, zorder=5)
    else:
        ax.plot(end_of_bar + longest * 0.012, y, marker=">", color=GREY, markersize=6, zorder=5)


def _months(p: PatientRecord, on: Any) -> float:
    return float((on - p.enrolled.on).days) / DAYS_PER_MONTH


# --- Kaplan–Meier ---------------------------------------------------------------------------


def survival(document: dict[str, Any]) -> Figure:
    """Overall survival: all treated patients, and by MRD status, each with numbers at risk."""
    objectives = document["objectives"]
    by_mrd = objectives["O7"]["survival"]
    figure = _figure(11, 4.8)
    left, right = figure.subplots(1, 2, sharey=True)
    _km_panel(left, [("all treated", objectives["O4"], BLUE)], "Overall survival")
    p = by_mrd.get("logrank_p")
    title = "Overall survival by MRD status" + (f" (log-rank p = {p:.2f})" if p is not None else "")
    _km_panel(right, [("MRD-negative", by_mrd["mrd_negative"], GREEN), ("never MRD-negative", by_mrd["never_mrd_negative"], ORANGE)], title)
    left.set_ylabel("probability of survival")
    return figure


def _km_panel(ax: Axes, curves: list[tuple[str, dict[str, Any], str]], title: str) -> None:
    longest = max((s["days"] for _, doc, _ in curves for s in doc["subjects"]), default=365)
    ticks = [t for t in range(0, int(longest) + 91, 90)]
    for label, doc, colour in curves:
        points = doc["curve"]
        if not points:
            continue
        days = [pt["day"] for pt in points] + [longest]
        surv = [pt["survival"] for pt in points] + [points[-1]["survival"]]
        low = [pt["ci95"][0] for pt in points] + [points[-1]["ci95"][0]]
        high = [pt["ci95"][1] for pt in points] + [points[-1]["ci95"][1]]
        ax.step(days, surv, where="post", color=colour, linewidth=2, label=f"{label} (n = {doc['n']}, deaths {doc['deaths']})")
        ax.fill_between(days, low, high, step="post", color=colour, alpha=0.15, linewidth=0)
        censored = [s["days"] for s in doc["subjects"] if not s["event"]]
        ax.plot(censored, [_step_value(points, d) for d in censored], marker="|", linestyle="", color=colour, markersize=10, markeredgewidth=1.5)
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0, ticks[-1])
    ax.set_xticks(ticks)
    ax.set_xlabel("days since enrollment")
    ax.grid(color="#e5e5e5", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="lower left", frameon=False, fontsize=8)
    # numbers at risk, one row per curve, under the axis
    ax.annotate("at risk", xy=(0, 0), xycoords="axes fraction", xytext=(-16, -48), textcoords="offset points", ha="right", fontsize=8, color="#333333")
    for row, (_, doc, colour) in enumerate(curves):
        days_at = [s["days"] for s in doc["subjects"]]
        for t in ticks:
            ax.annotate(
                str(sum(1 for d in days_at if d >= t)), xy=(t, 0), xycoords=("data", "axes fraction"), xytext=(0, -48 - 11 * row),
                textcoords="offset points", ha="center", fontsize=8, color=colour,
            )


def _step_value(points: list[dict[str, Any]], day: float) -> float:
    value = 1.0
    for pt in points:
        if pt["day"] <= day:
            value = pt["survival"]
    return float(value)


# --- escalation -----------------------------------------------------------------------------


def escalation(document: dict[str, Any]) -> Figure:
    """Each phase I patient at their dose level in order of assignment: DLT or not; the decisions."""
    strata = document["objectives"]["O1"]["strata"] or [{"stratum": "none", "levels": [], "decisions": [], "mtd_mg": None}]
    figure = _figure(11, 2.2 + 2.0 * len(strata))
    axes = figure.subplots(len(strata), 1, squeeze=False)[:, 0]
    for ax, stratum in zip(axes, strata, strict=True):
        _escalation_panel(ax, stratum)
    return figure


def _escalation_panel(ax: Axes, stratum: dict[str, Any]) -> None:
    from matplotlib.lines import Line2D

    doses = [lv["dose_mg"] for lv in stratum["levels"]]
    x = 0
    for lv in stratum["levels"]:
        for pid in lv["patient_ids"]:
            x += 1
            dlt = pid in lv["dlt_patient_ids"]
            ax.plot(x, lv["dose_mg"], marker="o", markersize=15, color=RED if dlt else GREEN, markeredgecolor="black", zorder=3)
            ax.annotate(pid, (x, lv["dose_mg"]), xytext=(0, -17), textcoords="offset points", ha="center", fontsize=7)
        if lv["patient_ids"]:
            decided = [f"{d['decision']} ({d['decided_on']})" for d in stratum["decisions"] if d["dose_mg"] == lv["dose_mg"]]
            label = f"{lv['dlts']}/{lv['evaluable']} with DLT" + (": " + ", then ".join(decided) if decided else "")
            ax.annotate(label, (x + 0.5, lv["dose_mg"]), va="center", fontsize=8, color="#333333")
    step = (doses[1] - doses[0]) if len(doses) > 1 else 100
    if stratum.get("mtd_mg") is not None:
        mtd = stratum["mtd_mg"]
        ax.axhspan(mtd - step * 0.3, mtd + step * 0.3, color=SKY, alpha=0.18, linewidth=0, zorder=0)
        ax.annotate(f"MTD {mtd} mg", (0.45, mtd + step * 0.3), xytext=(0, -11), textcoords="offset points", color=BLUE, fontsize=9)
    ax.set_yticks(doses, [f"{d} mg" for d in doses])
    ax.set_ylim(min(doses, default=0) - step * 0.6, max(doses, default=0) + step * 0.6)
    ax.set_xlim(0.3, x + 5.5)
    ax.set_xticks(range(1, x + 1))
    ax.set_xlabel("patient, in order of assignment")
    ax.set_ylabel("bosutinib daily dose")
    ax.set_title(f"Phase I 3+3 escalation, stratum {stratum['stratum']}", loc="left", fontsize=11)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(
        handles=[
            Line2D([], [], marker="o", color=GREEN, markeredgecolor="black", linestyle="", markersize=10, label="no DLT"),
            Line2D([], [], marker="o", color=RED, markeredgecolor="black", linestyle="", markersize=10, label="DLT in cycle 1"),
        ],
        loc="upper left", frameon=False, fontsize=8,
    )

