"""The estimators behind the report: exact binomial intervals, Kaplan–Meier, log-rank, Fisher.

Thin wrappers over SciPy and lifelines, so the numbers are those of well-tested libraries and
the rest of the report sees plain values:

- ``clopper_pearson(x, n)``: the exact (Clopper–Pearson) two-sided 95% interval of ``x/n``;
- ``kaplan_meier(days, events)``: the product-limit estimate with Greenwood's variance and the
  log(-log) ("exponential Greenwood") 95% interval, its median with the interval of the
  median (Brookmeyer–Crowley, from the pointwise band), the survival at a time, and the
  numbers at risk;
- ``logrank(...)`` and ``fisher_exact(...)``: two-sided p-values.

SciPy and lifelines are imported here only, so the rest of the CLI starts without them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def as_list(self) -> list[float | None]:
        return [_finite(self.low), _finite(self.high)]


def clopper_pearson(x: int, n: int, confidence: float = 0.95) -> Interval | None:
    """The exact binomial interval of ``x`` successes in ``n`` trials; ``None`` when ``n`` is 0."""
    if n == 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(x, n).proportion_ci(confidence_level=confidence, method="exact")
    return Interval(float(ci.low), float(ci.high))


@dataclass(frozen=True)
class KaplanMeier:
    """A fitted product-limit estimate (times in days)."""

    n: int
    events: int
    times: list[float]  # 0 then every distinct time of the data
    survival: list[float]
    lower: list[float]
    upper: list[float]
    median: float | None  # None: not reached
    median_ci: Interval

    def at(self, t: float) -> tuple[float, Interval]:
        """S(t) and its 95% interval: the step function's value at ``t``."""
        i = max(k for k, time in enumerate(self.times) if time <= t)
        return self.survival[i], Interval(self.lower[i], self.upper[i])

    def at_risk(self, t: float, days: list[float]) -> int:
        return sum(1 for d in days if d >= t)


def kaplan_meier(days: list[float], events: list[bool]) -> KaplanMeier | None:
    """Fit the Kaplan–Meier estimate; ``None`` without subjects."""
    if not days:
        return None
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    fitter = KaplanMeierFitter().fit(days, event_observed=[bool(e) for e in events])
    sf = fitter.survival_function_.iloc[:, 0]
    band = fitter.confidence_interval_survival_function_
    median = float(fitter.median_survival_time_)
    median_band = median_survival_times(fitter.confidence_interval_)
    return KaplanMeier(
        n=len(days),
        events=sum(1 for e in events if e),
        times=[float(t) for t in sf.index],
        survival=[float(s) for s in sf.to_numpy()],
        lower=[float(v) for v in band.iloc[:, 0].to_numpy()],
        upper=[float(v) for v in band.iloc[:, 1].to_numpy()],
        median=median if math.isfinite(median) else None,
        median_ci=Interval(float(median_band.iloc[0, 0]), float(median_band.iloc[0, 1])),
    )


def logrank(days_a: list[float], events_a: list[bool], days_b: list[float], events_b: list[bool]) -> float | None:
    """Two-sided p-value of the log-rank test between two groups; ``None`` if either is empty."""
    if not days_a or not days_b:
        return None
    from lifelines.statistics import logrank_test

    result: Any = logrank_test(days_a, days_b, event_observed_A=events_a, event_observed_B=events_b)
    p = float(result.p_value)
    return p if math.isfinite(p) else None


def fisher_exact(table: list[list[int]]) -> float | None:
    """Two-sided p-value of Fisher's exact test of a 2×2 table; ``None`` when a margin is empty."""
    if any(sum(row) == 0 for row in table) or any(table[0][j] + table[1][j] == 0 for j in range(2)):
        return None
    from scipy.stats import fisher_exact as fisher

    return float(fisher(table).pvalue)


def mann_whitney(a: list[float], b: list[float]) -> float | None:
    """Two-sided p-value of the Mann–Whitney U test (``a`` against ``b``); ``None`` if either is empty."""
    if not a or not b:
        return None
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def median(values: list[float]) -> float | None:
    from statistics import median as _median

    return float(_median(values)) if values else None


def _finite(value: float) -> float | None:
    """JSON has no infinity: an unbounded end of an interval is ``None``."""
    return value if math.isfinite(value) else None
