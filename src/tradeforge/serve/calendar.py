"""When bars close and when their jobs run: an exchange calendar checked against the broker's.

:class:`BarCalendar` turns an ``exchange_calendars`` calendar (holidays, early closes, DST) and a
bar frequency into the UTC instants at which each bar closes, and adds ``offset_s`` so the bar
job runs only once the bar's data has had time to arrive.

Exchange calendars learn about ad-hoc closures only through package updates (NYSE closed on
2025-01-09 for President Carter's day of mourning, announced two weeks before). The broker's
calendar (Alpaca ``/v2/calendar``) is the authority for the days it covers, so the service
calls :meth:`BarCalendar.reconcile_with` at start-up: days the broker does not list are
skipped, closes the broker moved are moved, and the differences are returned for the log.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd

from tradeforge.core.errors import ConfigError, DataError


def broker_sessions(
    client: Any, start: date, end: date, tz: str = "America/New_York"
) -> list[BrokerSession]:
    """The broker's sessions ``[start, end]`` from an alpaca-py ``TradingClient``
    (``GET /v2/calendar``; Alpaca and the local venue answer it alike)."""
    from alpaca.trading.requests import GetCalendarRequest

    rows = client.get_calendar(GetCalendarRequest(start=start, end=end))
    out = []
    for row in rows:
        opened, closed = row.open, row.close
        if opened.tzinfo is None:  # alpaca-py gives exchange-local naive datetimes
            opened, closed = (
                opened.replace(tzinfo=ZoneInfo(tz)),
                closed.replace(tzinfo=ZoneInfo(tz)),
            )
        out.append(BrokerSession(date=row.date, open=opened, close=closed))
    return out


__all__ = [
    "BarAnchor",
    "BarCalendar",
    "BrokerSession",
    "CalendarCheck",
    "SessionChange",
    "broker_sessions",
    "parse_frequency",
    "require_aware",
]

_LOG = logging.getLogger(__name__)

BarAnchor = Literal["open", "clock"]

_FREQ = re.compile(r"^\s*(\d+)\s*(s|min|h|d)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "min": 60, "h": 3600, "d": 86400}
_SCAN_DAYS = 21  # window of sessions searched at a time when looking for the next bar


def parse_frequency(frequency: str) -> timedelta | None:
    """The bar length of ``frequency``; ``None`` for daily bars ("1d").

    Accepted: ``"1d"`` and intraday ``"<n>h"``, ``"<n>min"``, ``"<n>s"`` shorter than a day.
    """
    match = _FREQ.match(frequency) if isinstance(frequency, str) else None
    if match is None:
        raise ConfigError(
            f"frequency = {frequency!r} is not a bar frequency; expected '1d' or an intraday "
            "length such as '1h', '30min', '5min', '1min'"
        )
    count, unit = int(match.group(1)), match.group(2).lower()
    if unit == "d":
        if count != 1:
            raise ConfigError(
                f"frequency = {frequency!r}: only daily bars ('1d') are supported above intraday; "
                "expected '1d' or an intraday length such as '1h'"
            )
        return None
    length = timedelta(seconds=count * _UNIT_SECONDS[unit])
    if not timedelta(0) < length < timedelta(days=1):
        raise ConfigError(
            f"frequency = {frequency!r} gives a bar of {length}; expected an intraday length "
            "above zero and below one day, or '1d'"
        )
    return length


def require_aware(value: datetime, field: str) -> datetime:
    """``value`` converted to UTC; a naive datetime is an error, never guessed."""
    if not isinstance(value, datetime):
        raise ConfigError(
            f"{field} = {value!r} is not a datetime; expected a timezone-aware datetime"
        )
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ConfigError(
            f"{field} = {value!r} is a naive datetime; expected a timezone-aware datetime "
            "(e.g. datetime(..., tzinfo=UTC))"
        )
    return value.astimezone(UTC)


@dataclass(frozen=True)
class BrokerSession:
    """One trading day as the broker schedules it (what Alpaca's ``/v2/calendar`` returns)."""

    date: date
    open: datetime
    close: datetime

    def __post_init__(self) -> None:
        if isinstance(self.date, datetime) or not isinstance(self.date, date):
            raise DataError(
                f"BrokerSession.date = {self.date!r} is not a date; expected a datetime.date"
            )
        opened = require_aware(self.open, f"BrokerSession({self.date}).open")
        closed = require_aware(self.close, f"BrokerSession({self.date}).close")
        if closed <= opened:
            raise DataError(
                f"BrokerSession({self.date}).close = {closed.isoformat()} is not after its open "
                f"{opened.isoformat()}; expected open < close"
            )
        object.__setattr__(self, "open", opened)
        object.__setattr__(self, "close", closed)

    @classmethod
    def from_alpaca(cls, row: Mapping[str, Any], tz: str = "America/New_York") -> BrokerSession:
        """Parse one ``/v2/calendar`` row: ``{"date": "2024-11-29", "open": "09:30", "close": "13:00"}``.

        Alpaca gives the open and close in exchange local time (``tz``), without an offset.
        """
        try:
            day = date.fromisoformat(str(row["date"]))
            zone = ZoneInfo(tz)
            opened = datetime.combine(day, time.fromisoformat(str(row["open"])), zone)
            closed = datetime.combine(day, time.fromisoformat(str(row["close"])), zone)
        except (KeyError, ValueError) as exc:
            raise DataError(
                f"broker calendar row {dict(row)!r} cannot be read ({exc}); expected keys "
                "date 'YYYY-MM-DD', open 'HH:MM', close 'HH:MM'"
            ) from None
        return cls(date=day, open=opened, close=closed)


@dataclass(frozen=True)
class SessionChange:
    """A day both calendars trade but with a different open or close (UTC)."""

    day: date
    exchange_open: datetime
    exchange_close: datetime
    broker_open: datetime
    broker_close: datetime

    @property
    def close_moved(self) -> bool:
        """Whether the close differs (an unscheduled early close, or one the exchange lifted)."""
        return self.exchange_close != self.broker_close


@dataclass(frozen=True)
class CalendarCheck:
    """The differences between the exchange calendar and the broker's, over ``start..end``.

    ``closed``: days the exchange calendar trades but the broker does not (skipped from now on).
    ``added``: days the broker trades but the exchange calendar does not (added).
    ``changed``: days whose open or close differ (the broker's times are used).
    """

    start: date
    end: date
    closed: tuple[date, ...]
    added: tuple[date, ...]
    changed: tuple[SessionChange, ...]

    @property
    def ok(self) -> bool:
        """True when both calendars agree on every day of the range."""
        return not (self.closed or self.added or self.changed)

    def summary(self) -> str:
        """One line for the start-up log."""
        if self.ok:
            return f"exchange and broker calendars agree from {self.start} to {self.end}"
        parts = []
        if self.closed:
            parts.append("closed by the broker: " + ", ".join(map(str, self.closed)))
        if self.added:
            parts.append("added by the broker: " + ", ".join(map(str, self.added)))
        if self.changed:
            parts.append(
                "times moved: "
                + ", ".join(
                    f"{c.day} close {c.exchange_close:%H:%M}->{c.broker_close:%H:%M} UTC"
                    for c in self.changed
                )
            )
        return f"calendar differences {self.start}..{self.end}: " + "; ".join(parts)


@dataclass(frozen=True)
class _Session:
    day: date
    open: datetime
    close: datetime
    break_start: datetime | None = None
    break_end: datetime | None = None


def _utc(stamp: Any) -> datetime | None:
    if stamp is None or pd.isna(stamp):
        return None
    return pd.Timestamp(stamp).tz_convert(UTC).to_pydatetime()


class BarCalendar:
    """Bar closes and bar-job run times on an exchange calendar, UTC-aware throughout.

    Daily bars close at the session close (early closes honoured). Intraday bars end every
    ``frequency`` after the session open (``anchor="open"``) or on the local clock's multiples of
    ``frequency`` (``anchor="clock"``: 1h bars end at 10:00, 11:00, ... as most data vendors cut
    them, so the first bar is short); the last bar of a session (or of the morning, on exchanges
    with a lunch break) is cut short at the close. A bar's job runs at ``close + offset_s``.
    """

    def __init__(
        self,
        exchange: str = "XNYS",
        frequency: str = "1d",
        offset_s: float = 60.0,
        anchor: BarAnchor = "open",
    ) -> None:
        import exchange_calendars as xcals  # heavy import, only when a calendar is built

        self._bar = parse_frequency(frequency)
        if anchor not in ("open", "clock"):
            raise ConfigError(
                f"anchor = {anchor!r} is not a bar anchor; expected 'open' (bars counted from the "
                "session open) or 'clock' (bars end on multiples of the frequency, local time)"
            )
        self.anchor: BarAnchor = anchor
        if not isinstance(offset_s, int | float) or not 0 <= offset_s < 86400:
            raise ConfigError(
                f"offset_s = {offset_s!r} is not a delay in seconds; expected 0 <= offset_s < 86400"
            )
        try:
            with warnings.catch_warnings():  # pandas warns on exchange_calendars' holiday rules
                warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
                self._cal = xcals.get_calendar(exchange)
        except xcals.errors.InvalidCalendarName:
            raise ConfigError(
                f"exchange = {exchange!r} is not a known exchange calendar; expected a code "
                "such as 'XNYS', 'XNAS', 'XLON', 'XTKS'"
            ) from None
        self.exchange = exchange
        self.frequency = frequency
        self.offset = timedelta(seconds=float(offset_s))
        self.tz = ZoneInfo(str(self._cal.tz))
        self._first: date = self._cal.first_session.date()
        self._last: date = self._cal.last_session.date()
        self._removed: set[date] = set()
        self._overrides: dict[date, _Session] = {}

    # ------------------------------------------------------------------ sessions

    @property
    def first_session(self) -> date:
        """The first day the calendar can answer for."""
        return self._first

    @property
    def last_session(self) -> date:
        """The last day the calendar can answer for (about a year ahead)."""
        return self._last

    def _check_range(self, day: date, field: str) -> None:
        if not self._first <= day <= self._last:
            raise DataError(
                f"{field} = {day} is outside the {self.exchange} calendar; expected a day "
                f"from {self._first} to {self._last}"
            )

    def _day(self, value: date | datetime, field: str) -> date:
        if isinstance(value, datetime):
            return require_aware(value, field).astimezone(self.tz).date()
        if isinstance(value, date):
            return value
        raise ConfigError(f"{field} = {value!r} is not a date; expected a datetime.date")

    def _table(self, start: date, end: date) -> list[_Session]:
        """Sessions from ``start`` to ``end`` (inclusive, clipped to the calendar), broker's word applied."""
        lo, hi = max(start, self._first), min(end, self._last)
        rows: dict[date, _Session] = {}
        if lo <= hi:
            frame = self._cal.schedule.loc[lo.isoformat() : hi.isoformat()]
            for label, opened, b_start, b_end, closed in zip(
                frame.index,
                frame["open"],
                frame["break_start"],
                frame["break_end"],
                frame["close"],
                strict=True,
            ):
                day = pd.Timestamp(label).date()
                if day in self._removed:
                    continue
                open_utc, close_utc = _utc(opened), _utc(closed)
                if open_utc is None or close_utc is None:
                    continue
                rows[day] = _Session(day, open_utc, close_utc, _utc(b_start), _utc(b_end))
        for day, session in self._overrides.items():
            if start <= day <= end:
                rows[day] = session
        return [rows[day] for day in sorted(rows)]

    def sessions(self, start: date | datetime, end: date | datetime) -> list[date]:
        """Trading days from ``start`` to ``end`` inclusive (exchange-local dates)."""
        lo, hi = self._day(start, "start"), self._day(end, "end")
        self._check_range(lo, "start")
        self._check_range(hi, "end")
        return [s.day for s in self._table(lo, hi)]

    def is_trading_day(self, day: date | datetime) -> bool:
        """Whether ``day`` (an exchange-local date, or an aware instant) is a session."""
        local = self._day(day, "day")
        self._check_range(local, "day")
        return bool(self._table(local, local))

    # ------------------------------------------------------------------ bars

    def _session_bars(self, session: _Session) -> list[datetime]:
        if self._bar is None:
            return [session.close]
        parts = [(session.open, session.close)]
        if (
            session.break_start is not None
            and session.break_end is not None
            and session.open < session.break_start < session.break_end < session.close
        ):
            parts = [(session.open, session.break_start), (session.break_end, session.close)]
        closes: list[datetime] = []
        for begin, finish in parts:
            stamp = begin + self._bar
            if self.anchor == "clock":  # first multiple of the bar length after local midnight
                local = begin.astimezone(self.tz)
                midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
                elapsed = local.replace(tzinfo=None) - midnight.replace(tzinfo=None)
                stamp = begin + (self._bar - elapsed % self._bar)
            while stamp < finish:
                closes.append(stamp)
                stamp += self._bar
            closes.append(finish)
        return closes

    def _bounds(
        self, start: date | datetime, end: date | datetime
    ) -> tuple[date, date, datetime | None, datetime | None]:
        lo_t = require_aware(start, "start") if isinstance(start, datetime) else None
        hi_t = require_aware(end, "end") if isinstance(end, datetime) else None
        lo, hi = self._day(start, "start"), self._day(end, "end")
        self._check_range(lo, "start")
        self._check_range(hi, "end")
        # a session may open the evening before its date in UTC (Asia-Pacific): widen by a day
        return lo - timedelta(days=1), hi + timedelta(days=1), lo_t, hi_t

    def bar_closes(self, start: date | datetime, end: date | datetime) -> list[datetime]:
        """UTC instants at which bars close, from ``start`` to ``end`` inclusive.

        Dates select whole sessions; aware datetimes select the closes inside ``[start, end]``.
        """
        lo, hi, lo_t, hi_t = self._bounds(start, end)
        lo_d = start if not isinstance(start, datetime) else None
        hi_d = end if not isinstance(end, datetime) else None
        out: list[datetime] = []
        for session in self._table(lo, hi):
            if (lo_d is not None and session.day < lo_d) or (
                hi_d is not None and session.day > hi_d
            ):
                continue
            for close in self._session_bars(session):
                if (lo_t is None or close >= lo_t) and (hi_t is None or close <= hi_t):
                    out.append(close)
        return out

    def job_times(self, start: date | datetime, end: date | datetime) -> list[datetime]:
        """When the bar jobs of the bars closing from ``start`` to ``end`` run (close + offset)."""
        return [close + self.offset for close in self.bar_closes(start, end)]

    def jobs_between(self, after: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
        """``(bar_close, run_at)`` of every bar whose job time lies in ``(after, until]``."""
        lo = require_aware(after, "after")
        hi = require_aware(until, "until")
        if hi <= lo:
            return []
        closes = self.bar_closes(
            max(lo - self.offset, datetime.combine(self._first, time(), UTC) + timedelta(days=1)),
            hi - self.offset,
        )
        return [(c, c + self.offset) for c in closes if lo < c + self.offset <= hi]

    def next_job_time(self, after: datetime) -> tuple[datetime, datetime]:
        """The first bar whose job runs strictly after ``after``: ``(bar_close, run_at)``."""
        moment = require_aware(after, "after")
        day = (moment - self.offset).astimezone(self.tz).date() - timedelta(days=1)
        self._check_range(max(day, self._first), "after")
        while day <= self._last:
            window_end = min(day + timedelta(days=_SCAN_DAYS), self._last)
            for session in self._table(day, window_end):
                for close in self._session_bars(session):
                    if close + self.offset > moment:
                        return close, close + self.offset
            day = window_end + timedelta(days=1)
        raise DataError(
            f"after = {moment.isoformat()}: no {self.exchange} bar closes before the calendar ends "
            f"on {self._last}; expected a time inside the calendar (update exchange_calendars)"
        )

    # ------------------------------------------------------------------ broker check

    def reconcile_with(self, broker_days: Sequence[BrokerSession]) -> CalendarCheck:
        """Compare with the broker's calendar over the days it covers, and adopt the broker's word.

        Within ``min(date)..max(date)`` of ``broker_days`` (days beyond the exchange calendar's
        range are ignored): exchange sessions the broker does not list are skipped from now on, broker sessions the exchange lacks are added, and a broker
        open or close that differs replaces the exchange's. Outside that range nothing changes.
        Calling it again re-checks against the plain exchange calendar for the new range.
        """
        if not broker_days:
            raise DataError(
                "broker_days = [] is empty; expected the broker's sessions for the period to check"
            )
        by_day: dict[date, BrokerSession] = {}
        for entry in broker_days:
            if not isinstance(entry, BrokerSession):
                raise DataError(
                    f"broker_days holds {entry!r}; expected BrokerSession(date, open, close) items"
                )
            if entry.date in by_day:
                raise DataError(
                    f"broker_days lists {entry.date} twice; expected one session per day"
                )
            by_day[entry.date] = entry
        outside = sorted(d for d in by_day if not self._first <= d <= self._last)
        if outside:
            _LOG.warning(
                "broker sessions %s..%s lie outside the %s calendar (%s..%s); not compared",
                outside[0],
                outside[-1],
                self.exchange,
                self._first,
                self._last,
            )
            by_day = {d: s for d, s in by_day.items() if self._first <= d <= self._last}
        if not by_day:
            raise DataError(
                f"broker_days cover {outside[0]}..{outside[-1]}, outside the {self.exchange} "
                f"calendar; expected days from {self._first} to {self._last}"
            )
        start, end = min(by_day), max(by_day)
        # judge against the plain exchange calendar, not earlier broker corrections
        self._removed = {d for d in self._removed if not start <= d <= end}
        self._overrides = {d: s for d, s in self._overrides.items() if not start <= d <= end}
        exchange = {s.day: s for s in self._table(start, end)}
        closed = tuple(sorted(set(exchange) - set(by_day)))
        added = tuple(sorted(set(by_day) - set(exchange)))
        changed: list[SessionChange] = []
        for day in sorted(set(exchange) & set(by_day)):
            ours, theirs = exchange[day], by_day[day]
            if (ours.open, ours.close) != (theirs.open, theirs.close):
                changed.append(SessionChange(day, ours.open, ours.close, theirs.open, theirs.close))
                keep_break = (
                    ours.break_start is not None
                    and ours.break_end is not None
                    and theirs.open < ours.break_start < ours.break_end < theirs.close
                )
                self._overrides[day] = _Session(
                    day,
                    theirs.open,
                    theirs.close,
                    ours.break_start if keep_break else None,
                    ours.break_end if keep_break else None,
                )
        for day in added:
            self._overrides[day] = _Session(day, by_day[day].open, by_day[day].close)
        self._removed |= set(closed)
        check = CalendarCheck(start, end, closed, added, tuple(changed))
        if check.ok:
            _LOG.info(check.summary())
        else:
            _LOG.warning(check.summary())
        return check

    def __repr__(self) -> str:
        return (
            f"BarCalendar(exchange={self.exchange!r}, frequency={self.frequency!r}, "
            f"offset_s={self.offset.total_seconds():g}, anchor={self.anchor!r})"
        )
