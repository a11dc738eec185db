"""Resampling: OHLCV aggregation, window labels and session boundaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradeforge.core.errors import DataError
from tradeforge.data.bundled import bundled_frame
from tradeforge.data.frames import canonical_bars
from tradeforge.data.resample import resample_bars


def minute_bars(n: int = 12, start: str = "2024-03-04 14:30") -> pd.DataFrame:
    stamps = pd.date_range(start, periods=n, freq="min", tz="UTC")
    k = np.arange(n, dtype=float)
    return pd.DataFrame(
        {
            "timestamp": stamps,
            "open": 100 + k,
            "high": 101 + k + (k == 2) * 5,  # a spike in minute 2
            "low": 99 + k - (k == 7) * 4,  # a dip in minute 7
            "close": 100.5 + k,
            "volume": 10 + k,
            "vwap": 100.2 + k,
        }
    )


def test_1m_to_5m_aggregates_ohlcv_and_labels_window_end() -> None:
    src = minute_bars(10)
    out = resample_bars(src, "1m", "5m")
    assert list(out["timestamp"]) == list(
        pd.to_datetime(["2024-03-04 14:35", "2024-03-04 14:40"], utc=True)
    )
    first, second = src.iloc[:5], src.iloc[5:]
    for row, part in zip(out.itertuples(), (first, second), strict=True):
        assert row.open == part["open"].iloc[0]
        assert row.high == part["high"].max()
        assert row.low == part["low"].min()
        assert row.close == part["close"].iloc[-1]
        assert row.volume == part["volume"].sum()
        assert row.vwap == pytest.approx(np.average(part["vwap"], weights=part["volume"]))
    assert out["high"].iloc[0] == 108.0  # the spike is kept
    assert out["low"].iloc[1] == 102.0  # the dip is kept


def test_start_label_and_incomplete_last_window() -> None:
    src = minute_bars(12)  # two full 5m windows and two minutes of a third
    out = resample_bars(src, "1m", "5m", label="start")
    assert list(out["timestamp"].dt.strftime("%H:%M")) == ["14:30", "14:35", "14:40"]
    assert out["volume"].iloc[2] == src["volume"].iloc[10:].sum()
    complete = resample_bars(src, "1m", "5m", label="start", complete_only=True)
    assert len(complete) == 2


def test_1h_to_1d_respects_the_fx_session_start() -> None:
    """EURUSD hourly (real, bundled) into FX days that roll at 17:00 New York."""
    hourly = canonical_bars(bundled_frame("EURUSD").drop(columns=["symbol"]), "EURUSD")
    hourly = hourly[
        (hourly["timestamp"] >= "2017-03-06") & (hourly["timestamp"] < "2017-03-10")
    ].reset_index(drop=True)
    daily = resample_bars(hourly, "1h", "1d", session_tz="America/New_York", session_start="17:00")
    # in March 2017 before the DST switch (03-12), 17:00 New York is 22:00 UTC
    ends = daily["timestamp"]
    assert (ends.dt.hour == 22).all()
    row = daily[ends == pd.Timestamp("2017-03-07 22:00", tz="UTC")].iloc[0]
    window = hourly[
        (hourly["timestamp"] >= "2017-03-06 22:00") & (hourly["timestamp"] < "2017-03-07 22:00")
    ]
    assert len(window) == 24
    assert row["open"] == window["open"].iloc[0]
    assert row["high"] == window["high"].max()
    assert row["low"] == window["low"].min()
    assert row["close"] == window["close"].iloc[-1]
    assert row["volume"] == pytest.approx(window["volume"].sum())


def test_1h_to_1d_equity_session_does_not_span_days() -> None:
    day1 = pd.date_range("2024-03-04 14:30", periods=7, freq="h", tz="UTC")
    day2 = pd.date_range("2024-03-05 14:30", periods=7, freq="h", tz="UTC")
    stamps = day1.append(day2)
    k = np.arange(14, dtype=float)
    frame = pd.DataFrame(
        {
            "timestamp": stamps,
            "open": 50 + k,
            "high": 51 + k,
            "low": 49 + k,
            "close": 50.5 + k,
            "volume": np.ones(14),
        }
    )
    out = resample_bars(frame, "1h", "1d", label="start", session_tz="America/New_York")
    assert list(out["timestamp"]) == list(
        pd.to_datetime(["2024-03-04 05:00", "2024-03-05 05:00"], utc=True)
    )
    assert out["open"].tolist() == [50.0, 57.0]
    assert out["close"].tolist() == [56.5, 63.5]
    assert out["volume"].tolist() == [7.0, 7.0]


def test_daily_to_weekly_starts_monday() -> None:
    daily = canonical_bars(bundled_frame("IBM").drop(columns=["symbol"]), "IBM").iloc[:15]
    weekly = resample_bars(daily, "1d", "1w", label="start")
    assert (weekly["timestamp"].dt.dayofweek == 0).all()
    first_week = daily[daily["timestamp"] < weekly["timestamp"].iloc[1]]
    assert weekly["close"].iloc[0] == first_week["close"].iloc[-1]
    assert weekly["volume"].iloc[0] == pytest.approx(first_week["volume"].sum())


@pytest.mark.parametrize(("src", "dst"), [("5m", "1m"), ("1h", "15m")])
def test_finer_target_is_refused(src: str, dst: str) -> None:
    with pytest.raises(DataError, match="whole multiple"):
        resample_bars(minute_bars(), src, dst)


def test_naive_timestamps_refused() -> None:
    frame = minute_bars()
    frame["timestamp"] = frame["timestamp"].dt.tz_localize(None)
    with pytest.raises(DataError, match="tz-aware UTC"):
        resample_bars(frame, "1m", "5m")
