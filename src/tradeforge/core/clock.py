"""Clocks: the same code runs on a live clock or a test clock that tests advance by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Source of the current time, always timezone-aware UTC."""

    def now(self) -> datetime: ...


class LiveClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class TestClock:
    """A clock that moves only when told to; for tests and backtests."""

    __test__ = False  # not a pytest test class

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(
                f"TestClock start {start!r} is naive; expected a timezone-aware UTC time"
            )
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError(
                f"TestClock.advance delta {delta} is negative; time only moves forward"
            )
        self._now += delta
        return self._now
