"""Bundled real data (ranges, bokeh adjustment) and corporate-action adjustment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradeforge.core.errors import DataError, UnknownSymbolError
from tradeforge.data.bundled import BUNDLED, _package_dir, bundled_frame, load_bundled_panel
from tradeforge.data.corporate import adjust_for_actions, fundamentals_asof

RANGES = {
    "SP500": ("1999-01-04", "2018-12-31"),
    "NASDAQ": ("1999-01-04", "2018-12-31"),
    "VIX": ("2014-01-03", "2019-01-03"),
    "WTI": ("1986-01-02", "2019-01-03"),
    "AAPL": ("2000-03-01", "2013-03-01"),
    "IBM": ("2000-03-01", "2013-03-01"),
    "MSFT": ("2000-03-01", "2013-03-01"),
    "GOOG": ("2004-08-19", "2013-03-01"),
    "GOOGL": ("2009-05-22", "2018-08-29"),
}


@pytest.mark.parametrize("symbol", sorted(RANGES))
def test_bundled_daily_ranges(symbol: str) -> None:
    frame = bundled_frame(symbol)
    first, last = RANGES[symbol]
    assert frame["timestamp"].iloc[0] == pd.Timestamp(first, tz="UTC")
    assert frame["timestamp"].iloc[-1] == pd.Timestamp(last, tz="UTC")
    assert frame["timestamp"].is_monotonic_increasing
    assert (frame["close"] > 0).all()


def test_eurusd_is_hourly_2017() -> None:
    frame = bundled_frame("EURUSD")
    assert BUNDLED["EURUSD"].frequency == "1h"
    assert frame["timestamp"].iloc[0].year == 2017
    steps = frame["timestamp"].diff().dropna()
    assert steps.min() == pd.Timedelta(hours=1)


def test_bokeh_ohlc_adjusted_by_adj_close_ratio() -> None:
    raw = pd.read_csv(_package_dir("bokeh_sampledata") / "_data" / "stocks.csv.gz")
    raw = raw[raw["Ticker"] == "AAPL"].reset_index(drop=True)
    frame = bundled_frame("AAPL")
    factor = raw["Adj Close"] / raw["Close"]
    np.testing.assert_allclose(frame["close"], raw["Adj Close"])
    np.testing.assert_allclose(frame["open"], raw["Open"] * factor)
    np.testing.assert_allclose(frame["low"], raw["Low"] * factor)
    np.testing.assert_allclose(frame["volume"] * frame["close"], raw["Volume"] * raw["Close"])
    # the 2:1 split of 2005-02-28 is not a -50% day in the adjusted series
    returns = np.log(frame["close"]).diff()
    split_day = frame.index[frame["timestamp"] == pd.Timestamp("2005-02-28", tz="UTC")][0]
    assert abs(returns[split_day]) < 0.1


def test_panel_and_unknown_symbols() -> None:
    panel = load_bundled_panel(["IBM", "GOOG"])
    assert panel.symbols == ("IBM", "GOOG")
    assert np.isnan(panel.close[0, 1])  # GOOG starts in 2004: NaN, never back-filled
    with pytest.raises(UnknownSymbolError, match="unknown bundled symbol 'TSLA'; available: AAPL"):
        bundled_frame("TSLA")
    with pytest.raises(UnknownSymbolError, match="frequency '1h', not '1d'"):
        load_bundled_panel(["EURUSD"])


def _raw_bars() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(
                ["2020-08-27", "2020-08-28", "2020-08-31", "2020-09-01"], utc=True
            ),
            "open": [508.57, 504.05, 127.58, 132.76],
            "high": [509.94, 505.77, 131.0, 134.8],
            "low": [495.33, 498.31, 126.0, 130.53],
            "close": [500.04, 499.23, 129.04, 134.18],
            "volume": [38888096.0, 46907479.0, 225702700.0, 151948100.0],
        }
    )


def test_split_adjustment_back_scales_history() -> None:
    actions = pd.DataFrame(
        {"ex_date": pd.to_datetime(["2020-08-31"], utc=True), "kind": ["split"], "value": [4.0]}
    )
    out = adjust_for_actions(_raw_bars(), actions)
    assert out["close"].tolist() == pytest.approx([125.01, 124.8075, 129.04, 134.18])
    assert out["volume"].iloc[0] == pytest.approx(38888096.0 * 4)
    assert out["volume"].iloc[3] == 151948100.0


def test_dividend_adjustment_uses_previous_close() -> None:
    actions = pd.DataFrame(
        {"ex_date": pd.to_datetime(["2020-09-01"], utc=True), "kind": ["dividend"], "value": [1.29]}
    )
    out = adjust_for_actions(_raw_bars(), actions)
    factor = 1 - 1.29 / 129.04
    assert out["close"].iloc[2] == pytest.approx(129.04 * factor)
    assert out["close"].iloc[3] == 134.18
    assert out["volume"].iloc[0] == 38888096.0


def test_bad_actions_are_rejected() -> None:
    with pytest.raises(DataError, match="lacks columns"):
        adjust_for_actions(_raw_bars(), pd.DataFrame({"when": []}))
    bad = pd.DataFrame(
        {"ex_date": pd.to_datetime(["2020-08-31"], utc=True), "kind": ["merger"], "value": [1.0]}
    )
    with pytest.raises(DataError, match="unknown action kind 'merger'"):
        adjust_for_actions(_raw_bars(), bad)


def test_fundamentals_asof_ignores_later_filings_and_restatements() -> None:
    funds = pd.DataFrame(
        {
            "published": pd.to_datetime(["2023-02-03", "2023-05-05", "2023-06-01"], utc=True),
            "period_end": pd.to_datetime(["2022-12-31", "2023-04-01", "2022-12-31"], utc=True),
            "item": ["eps", "eps", "eps"],
            "value": [1.89, 1.53, 1.88],  # the last row restates Q1 later
        }
    )
    assert fundamentals_asof(funds, "2023-05-04")["eps"] == 1.89
    assert fundamentals_asof(funds, "2023-05-05")["eps"] == 1.53
    # a later restatement of an older period is known from its own publication date
    assert fundamentals_asof(funds, "2023-06-02")["eps"] == 1.88
