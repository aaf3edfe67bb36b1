"""Where the ledger reads the time: injected everywhere, faked in tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def today(self) -> date:
        """Today's date (UTC)."""
        ...


class SystemClock:
    """The server's clock in UTC: the only source of ``recorded_at``."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        return self.now().date()


class FixedClock:
    """A clock that stands still until moved; for tests and replays."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self.at = at

    def now(self) -> datetime:
        return self.at

    def today(self) -> date:
        return self.at.astimezone(UTC).date()

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.at = self.at + timedelta(**delta)


class OffsetClock:
    """The server's clock moved by a fixed offset: time runs, from another starting point (tests, rehearsals)."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    @classmethod
    def starting_at(cls, at: datetime) -> OffsetClock:
        return cls(at - datetime.now(UTC))

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def today(self) -> date:
        return self.now().date()
