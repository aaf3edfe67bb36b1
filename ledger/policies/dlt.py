"""DLT-WINDOW: which toxicities are dose-limiting and count for the 3+3 escalation.

A toxicity is dose-limiting when the investigator declared it so (``dlt: true``), or, absent
a declaration, when it is non-hematologic, of grade >= ``dlt_min_grade`` and at least
possibly related. It counts for escalation only with onset in cycle 1, days 1 to
``dlt_window_days``.
"""

from __future__ import annotations

from datetime import date, timedelta

from ledger.protocol import Protocol


def is_dose_limiting(
    *, grade: int, attribution: str, hematologic: bool, declared: bool | None, protocol: Protocol
) -> bool:
    if declared is not None:
        return declared
    if protocol.dlt_non_hematologic_only and hematologic:
        return False
    return grade >= protocol.dlt_min_grade and attribution in protocol.dlt_attributions


def dlt_window(cycle1_started_on: date, protocol: Protocol) -> tuple[date, date]:
    """First and last day of the DLT window (cycle 1, days 1..dlt_window_days)."""
    return cycle1_started_on, cycle1_started_on + timedelta(days=protocol.dlt_window_days - 1)


def in_dlt_window(onset_on: date, cycle1_started_on: date | None, protocol: Protocol) -> bool:
    if cycle1_started_on is None:
        return False
    first, last = dlt_window(cycle1_started_on, protocol)
    return first <= onset_on <= last
