"""The CLI's option types refuse what they cannot represent, naming it (a usage error, never a traceback)."""

from __future__ import annotations

import argparse

import pytest

from ledger.interfaces.options import timestamp


@pytest.mark.parametrize(
    ("text", "why"),
    [("2026-03-01T09:00:00", "needs an offset"), ("yesterday", "not an ISO 8601"), ("0001-01-01T00:00:00+23:59", "no time in UTC")],
)
def test_a_timestamp_that_is_no_point_in_time_is_a_usage_error(text: str, why: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=why):
        timestamp(text)


def test_a_timestamp_keeps_its_offset() -> None:
    assert timestamp("2026-03-01T09:00:00+01:00").utcoffset() is not None
