"""BarCalendar on the real XNYS calendar shipped with exchange_calendars (no network)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tradeforge.core.errors import ConfigError, DataError
from tradeforge.serve.calendar import BarCalendar, BrokerSession, parse_frequency

NY = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(scope="module")
def daily() -> BarCalendar:
    return BarCalendar("XNYS", "1d", offset_s=60)


def test_no_sessions_on_weekends_or_holidays(daily: BarCalendar) -> None:
    days = daily.sessions(date(2024, 12, 20), date(2024, 12, 31))
    assert days == [
        date(2024, 12, 20),
        date(2024, 12, 23),
        date(2024, 12, 24),
        date(2024, 12, 26),
        date(2024, 12, 27),
        date(2024, 12, 30),
        date(2024, 12, 31),
    ]
    assert not daily.is_trading_day(date(2024, 12, 25))
    assert not daily.is_trading_day(date(2024, 7, 4))
    assert not daily.is_trading_day(date(2024, 12, 21))  # Saturday
    assert daily.is_trading_day(date(2024, 7, 5))
    # an aware instant is judged by its exchange-local date: 2024-07-05 02:00 UTC is July 4th in NY
    assert not daily.is_trading_day(utc(2024, 7, 5, 2, 0))


def test_carter_day_of_mourning_is_closed(daily: BarCalendar) -> None:
    # exchange_calendars 4.13 knows the 2025-01-09 closure; the broker path is tested below too
    assert not daily.is_trading_day(date(2025, 1, 9))
    closes = daily.bar_closes(date(2025, 1, 8), date(2025, 1, 10))
    assert closes == [utc(2025, 1, 8, 21), utc(2025, 1, 10, 21)]
    close, run_at = daily.next_job_time(utc(2025, 1, 8, 21, 1))
    assert (close, run_at) == (utc(2025, 1, 10, 21), utc(2025, 1, 10, 21, 1))


def test_no_job_times_on_weekends(daily: BarCalendar) -> None:
    runs = daily.job_times(date(2024, 6, 1), date(2024, 6, 30))
    assert len(runs) == 19  # June 2024: 20 weekdays, Juneteenth closed
    assert all(run.astimezone(NY).weekday() < 5 for run in runs)
    assert date(2024, 6, 19) not in {run.astimezone(NY).date() for run in runs}
    # Friday's job, then Monday's: nothing in between
    close, run_at = daily.next_job_time(utc(2024, 6, 7, 20, 1))
    assert run_at == utc(2024, 6, 10, 20, 1)
    assert close == utc(2024, 6, 10, 20)


def test_early_close_day_after_thanksgiving(daily: BarCalendar) -> None:
    assert daily.bar_closes(date(2024, 11, 29), date(2024, 11, 29)) == [utc(2024, 11, 29, 18)]
    assert daily.job_times(date(2024, 11, 29), date(2024, 11, 29)) == [utc(2024, 11, 29, 18, 1)]
    hourly = BarCalendar("XNYS", "1h", offset_s=0)
    closes = hourly.bar_closes(date(2024, 11, 29), date(2024, 11, 29))
    assert [c.astimezone(NY).strftime("%H:%M") for c in closes] == [
        "10:30",
        "11:30",
        "12:30",
        "13:00",
    ]
    minutes = BarCalendar("XNYS", "1min")
    one_min = minutes.bar_closes(date(2024, 11, 29), date(2024, 11, 29))
    assert len(one_min) == 210  # 09:30 to 13:00
    assert one_min[-1] == utc(2024, 11, 29, 18)


def test_intraday_regular_day_and_window_bounds() -> None:
    half = BarCalendar("XNYS", "30min", offset_s=5)
    closes = half.bar_closes(date(2024, 11, 27), date(2024, 11, 27))
    assert len(closes) == 13
    assert closes[0] == utc(2024, 11, 27, 15, 0)
    assert closes[-1] == utc(2024, 11, 27, 21, 0)
    inside = half.bar_closes(utc(2024, 11, 27, 15, 0), utc(2024, 11, 27, 16, 0))
    assert inside == [utc(2024, 11, 27, 15, 0), utc(2024, 11, 27, 15, 30), utc(2024, 11, 27, 16)]
    assert half.next_job_time(utc(2024, 11, 27, 15, 0, 5)) == (
        utc(2024, 11, 27, 15, 30),
        utc(2024, 11, 27, 15, 30, 5),
    )
    # after the last bar of Wednesday comes the first bar of Friday (Thanksgiving closed)
    assert half.next_job_time(utc(2024, 11, 27, 21, 0, 5))[0] == utc(2024, 11, 29, 15, 0)


@pytest.mark.parametrize(
    ("before", "after", "close_before", "close_after"),
    [
        (date(2024, 3, 8), date(2024, 3, 11), utc(2024, 3, 8, 21), utc(2024, 3, 11, 20)),
        (date(2024, 11, 1), date(2024, 11, 4), utc(2024, 11, 1, 20), utc(2024, 11, 4, 21)),
        (date(2025, 3, 7), date(2025, 3, 10), utc(2025, 3, 7, 21), utc(2025, 3, 10, 20)),
        (date(2025, 10, 31), date(2025, 11, 3), utc(2025, 10, 31, 20), utc(2025, 11, 3, 21)),
    ],
)
def test_dst_weeks_give_utc_closes(
    daily: BarCalendar, before: date, after: date, close_before: datetime, close_after: datetime
) -> None:
    assert daily.bar_closes(before, after) == [close_before, close_after]
    assert all(c.astimezone(NY).hour == 16 for c in (close_before, close_after))


def test_clock_anchored_bars_end_on_the_hour() -> None:
    hourly = BarCalendar("XNYS", "1h", offset_s=0, anchor="clock")
    closes = hourly.bar_closes(date(2024, 11, 27), date(2024, 11, 27))
    local = [c.astimezone(NY).strftime("%H:%M") for c in closes]
    assert local == ["10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]
    early = hourly.bar_closes(date(2024, 11, 29), date(2024, 11, 29))
    assert [c.astimezone(NY).strftime("%H:%M") for c in early] == [
        "10:00",
        "11:00",
        "12:00",
        "13:00",
    ]
    with pytest.raises(ConfigError, match=r"anchor = 'noon'.*expected 'open'"):
        BarCalendar("XNYS", "1h", anchor="noon")  # type: ignore[arg-type]


def test_exchange_with_lunch_break() -> None:
    hk = BarCalendar("XHKG", "1h", offset_s=0)
    closes = hk.bar_closes(date(2024, 3, 8), date(2024, 3, 8))
    local = [c.astimezone(ZoneInfo("Asia/Hong_Kong")).strftime("%H:%M") for c in closes]
    assert local == ["10:30", "11:30", "12:00", "14:00", "15:00", "16:00"]


def test_jobs_between_is_half_open(daily: BarCalendar) -> None:
    got = daily.jobs_between(utc(2024, 11, 26, 21, 1), utc(2024, 11, 29, 18, 1))
    assert got == [
        (utc(2024, 11, 27, 21), utc(2024, 11, 27, 21, 1)),
        (utc(2024, 11, 29, 18), utc(2024, 11, 29, 18, 1)),
    ]
    assert daily.jobs_between(utc(2024, 11, 29, 18, 1), utc(2024, 11, 29, 18, 1)) == []


def _alpaca(day: str, open_: str = "09:30", close: str = "16:00") -> BrokerSession:
    return BrokerSession.from_alpaca({"date": day, "open": open_, "close": close})


def test_reconcile_removes_day_and_moves_close() -> None:
    cal = BarCalendar("XNYS", "1d", offset_s=60)
    broker = [
        _alpaca("2024-12-02"),
        _alpaca("2024-12-03", close="14:00"),  # unscheduled early close
        # 2024-12-04 missing: an unscheduled closure the exchange calendar does not know
        _alpaca("2024-12-05"),
        _alpaca("2024-12-06"),
    ]
    check = cal.reconcile_with(broker)
    assert not check.ok
    assert (check.start, check.end) == (date(2024, 12, 2), date(2024, 12, 6))
    assert check.closed == (date(2024, 12, 4),)
    assert check.added == ()
    assert len(check.changed) == 1
    moved = check.changed[0]
    assert moved.day == date(2024, 12, 3)
    assert moved.close_moved
    assert (moved.exchange_close, moved.broker_close) == (
        utc(2024, 12, 3, 21),
        utc(2024, 12, 3, 19),
    )
    assert "2024-12-04" in check.summary()
    # the calendar now follows the broker
    assert not cal.is_trading_day(date(2024, 12, 4))
    assert cal.bar_closes(date(2024, 12, 2), date(2024, 12, 6)) == [
        utc(2024, 12, 2, 21),
        utc(2024, 12, 3, 19),
        utc(2024, 12, 5, 21),
        utc(2024, 12, 6, 21),
    ]
    assert cal.next_job_time(utc(2024, 12, 3, 19, 1)) == (
        utc(2024, 12, 5, 21),
        utc(2024, 12, 5, 21, 1),
    )
    # outside the broker's range the exchange calendar still answers
    assert cal.is_trading_day(date(2024, 12, 9))
    # another calendar is not affected (state is per instance)
    assert BarCalendar().is_trading_day(date(2024, 12, 4))


def test_reconcile_agreeing_calendars_and_added_day() -> None:
    cal = BarCalendar()
    check = cal.reconcile_with([_alpaca("2024-11-27"), _alpaca("2024-11-29", close="13:00")])
    assert check.ok
    assert check.closed == check.added == check.changed == ()
    # the broker trades a day the exchange calendar thinks is closed (Saturday, for the test)
    extra = cal.reconcile_with([_alpaca("2024-11-29", close="13:00"), _alpaca("2024-11-30")])
    assert extra.added == (date(2024, 11, 30),)
    assert cal.bar_closes(date(2024, 11, 29), date(2024, 11, 30))[-1] == utc(2024, 11, 30, 21)


def test_reconcile_ignores_broker_days_beyond_the_calendar() -> None:
    cal = BarCalendar()
    beyond = cal.last_session + timedelta(days=30)
    far = BrokerSession(
        beyond,
        datetime.combine(beyond, datetime.min.time(), NY).replace(hour=9, minute=30),
        datetime.combine(beyond, datetime.min.time(), NY).replace(hour=16),
    )
    check = cal.reconcile_with([_alpaca("2024-11-27"), far])
    assert (check.start, check.end) == (date(2024, 11, 27), date(2024, 11, 27))
    assert check.ok
    with pytest.raises(DataError, match=r"outside the XNYS calendar"):
        cal.reconcile_with([far])


def test_reconcile_path_removes_a_closure_the_calendar_does_not_know() -> None:
    # the 2025-01-09 closure as it would look with an exchange_calendars release that lacks it:
    # the broker's calendar is what removes the day. Take a normal Thursday to stand in for it.
    cal = BarCalendar()
    assert cal.is_trading_day(date(2025, 1, 16))
    cal.reconcile_with([_alpaca("2025-01-15"), _alpaca("2025-01-17")])
    assert not cal.is_trading_day(date(2025, 1, 16))
    assert cal.next_job_time(utc(2025, 1, 15, 21, 1))[0] == utc(2025, 1, 17, 21)


def test_errors_name_field_value_and_expectation() -> None:
    with pytest.raises(ConfigError, match=r"exchange = 'XXXX'.*expected"):
        BarCalendar("XXXX")
    with pytest.raises(ConfigError, match=r"frequency = '7x'.*expected"):
        BarCalendar("XNYS", "7x")
    with pytest.raises(ConfigError, match=r"frequency = '2d'"):
        parse_frequency("2d")
    with pytest.raises(ConfigError, match=r"frequency = '0min'"):
        parse_frequency("0min")
    with pytest.raises(ConfigError, match=r"offset_s = -1"):
        BarCalendar("XNYS", "1d", offset_s=-1)
    cal = BarCalendar()
    with pytest.raises(ConfigError, match=r"after = .*naive datetime.*timezone-aware"):
        cal.next_job_time(datetime(2024, 11, 29, 12))
    with pytest.raises(ConfigError, match=r"start = .*naive"):
        cal.bar_closes(datetime(2024, 11, 29), date(2024, 11, 30))
    with pytest.raises(DataError, match=r"start = 1990-01-02 is outside the XNYS calendar"):
        cal.sessions(date(1990, 1, 2), date(1990, 1, 5))
    with pytest.raises(ConfigError, match=r"open = .*naive"):
        BrokerSession(date(2024, 1, 2), datetime(2024, 1, 2, 9, 30), utc(2024, 1, 2, 21))
    with pytest.raises(DataError, match=r"close = .* is not after its open"):
        BrokerSession(date(2024, 1, 2), utc(2024, 1, 2, 21), utc(2024, 1, 2, 14))
    with pytest.raises(DataError, match=r"cannot be read.*expected keys"):
        BrokerSession.from_alpaca({"date": "2024-01-02", "open": "9h30"})
    with pytest.raises(DataError, match=r"broker_days = \[\] is empty"):
        cal.reconcile_with([])
    with pytest.raises(DataError, match=r"lists 2024-01-02 twice"):
        cal.reconcile_with([_alpaca("2024-01-02"), _alpaca("2024-01-02")])


def test_frequency_parsing() -> None:
    assert parse_frequency("1d") is None
    assert parse_frequency("1D") is None
    assert parse_frequency("1h") == timedelta(hours=1)
    assert parse_frequency("30min") == timedelta(minutes=30)
    assert parse_frequency("1min") == timedelta(minutes=1)
    assert parse_frequency("15s") == timedelta(seconds=15)
