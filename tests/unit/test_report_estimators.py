"""The report's estimators against published textbook values.

Kaplan–Meier: the remission times of the 6-mercaptopurine arm of Freireich et al. (Blood
1963), the classic example of Gehan (1965), Cox & Oakes (1984, Table 1.1) and Kleinbaum &
Klein, *Survival Analysis* (3rd ed., ch. 2): 21 patients, 9 relapses, product-limit estimates
0.857, 0.807, 0.753, 0.690, 0.627, 0.538, 0.448 at 6, 7, 10, 13, 16, 22, 23 weeks; median 23
weeks. Its Greenwood standard error at 23 weeks, 0.135, and the log(-log) 95% interval
(0.188, 0.680) are those printed by R's ``survfit(..., conf.type = "log-log")``, computed
here again by hand.

Clopper–Pearson: exact 95% limits of x/n from published tables (Geigy Scientific Tables;
Conover, *Practical Nonparametric Statistics*, Table A4; Newcombe, Stat Med 1998, Table II).
"""

from __future__ import annotations

import math

import pytest

from ledger.reports.estimators import clopper_pearson, fisher_exact, kaplan_meier, logrank

SIX_MP_WEEKS = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
SIX_MP_RELAPSED = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
PLACEBO_WEEKS = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]


def test_kaplan_meier_reproduces_the_published_6mp_remission_estimates() -> None:
    km = kaplan_meier([float(t) for t in SIX_MP_WEEKS], [bool(e) for e in SIX_MP_RELAPSED])
    assert km is not None
    published = {6: 0.857, 7: 0.807, 10: 0.753, 13: 0.690, 16: 0.627, 22: 0.538, 23: 0.448, 35: 0.448}
    for week, survival in published.items():
        assert km.at(week)[0] == pytest.approx(survival, abs=5e-4), week
    assert km.at(5.9)[0] == 1.0
    assert km.median == 23.0
    assert (km.n, km.events) == (21, 9)


def test_kaplan_meier_interval_is_greenwoods_log_minus_log_interval() -> None:
    km = kaplan_meier([float(t) for t in SIX_MP_WEEKS], [bool(e) for e in SIX_MP_RELAPSED])
    assert km is not None
    # by hand at 23 weeks: S and Greenwood's sum over the event times (at risk n, deaths d)
    steps = [(21, 3), (17, 1), (15, 1), (12, 1), (11, 1), (7, 1), (6, 1)]
    s = math.prod(1 - d / n for n, d in steps)
    greenwood = sum(d / (n * (n - d)) for n, d in steps)
    assert s * math.sqrt(greenwood) == pytest.approx(0.135, abs=5e-4)  # the published standard error
    half_width = 1.959964 * math.sqrt(greenwood) / abs(math.log(s))
    low, high = s ** math.exp(half_width), s ** math.exp(-half_width)
    estimate, ci = km.at(23)
    assert estimate == pytest.approx(s)
    assert (ci.low, ci.high) == pytest.approx((low, high), abs=1e-4)
    assert (ci.low, ci.high) == pytest.approx((0.188, 0.680), abs=5e-4)


def test_median_interval_of_the_6mp_arm_is_13_weeks_to_not_reached() -> None:
    km = kaplan_meier([float(t) for t in SIX_MP_WEEKS], [bool(e) for e in SIX_MP_RELAPSED])
    assert km is not None
    assert km.median_ci.as_list() == [13.0, None]


def test_the_placebo_arm_has_its_published_median_of_8_weeks_and_differs_by_log_rank() -> None:
    km = kaplan_meier([float(t) for t in PLACEBO_WEEKS], [True] * 21)
    assert km is not None and km.median == 8.0
    p = logrank([float(t) for t in SIX_MP_WEEKS], [bool(e) for e in SIX_MP_RELAPSED], [float(t) for t in PLACEBO_WEEKS], [True] * 21)
    assert p == pytest.approx(4.17e-5, rel=0.02)  # chi-square 16.79 on 1 df (Cox & Oakes; R survdiff)


def test_a_median_not_reached_is_none() -> None:
    km = kaplan_meier([100.0, 200.0, 300.0], [True, False, False])
    assert km is not None and km.median is None


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.3085),
        (1, 10, 0.0025, 0.4450),
        (5, 10, 0.1871, 0.8129),
        (10, 10, 0.6915, 1.0),
        (81, 263, 0.2527, 0.3676),  # Newcombe 1998, example (a)
        (15, 148, 0.0578, 0.1617),  # Newcombe 1998, example (b)
        (0, 20, 0.0, 0.1684),  # Newcombe 1998, example (c)
        (1, 29, 0.0009, 0.1776),  # Newcombe 1998, example (d)
    ],
)
def test_clopper_pearson_matches_published_exact_limits(x: int, n: int, low: float, high: float) -> None:
    ci = clopper_pearson(x, n)
    assert ci is not None
    assert (ci.low, ci.high) == pytest.approx((low, high), abs=1e-4)


def test_no_interval_without_patients() -> None:
    assert clopper_pearson(0, 0) is None


def test_fisher_exact_of_the_tea_tasting_table() -> None:
    assert fisher_exact([[3, 1], [1, 3]]) == pytest.approx(0.4857, abs=1e-4)  # Fisher 1935, two-sided
    assert fisher_exact([[2, 0], [0, 0]]) is None
