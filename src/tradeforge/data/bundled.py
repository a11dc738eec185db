"""Real market data shipped inside PyPI packages, exposed as named bundled datasets.

Sources (see docs/data.md for licences):

* ``arch`` (``arch/data``): S&P 500 and NASDAQ composite daily OHLCV 1999-2018, VIX, WTI.
* ``bokeh-sampledata`` (``_data/stocks.csv.gz``): AAPL, IBM, MSFT 2000-2013, GOOG 2004-2013,
  unadjusted OHLC plus ``Adj Close``; we return split/dividend-adjusted OHLC.
* ``gym-anytrading`` (``datasets/data``): GOOGL daily 2009-2018, EURUSD hourly 2017.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.panel import OHLCV, BarPanel


@dataclass(frozen=True)
class BundledSeries:
    """One bundled instrument: where it lives and how to read it."""

    symbol: str
    package: str
    relative_path: str
    frequency: str
    asset_class: str
    description: str
    reader: str  # name of a function in _READERS


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SourceError(
            f"bundled data needs the package {package!r}, which is not installed; "
            f"run: pip install {package.replace('_', '-')}"
        )
    return Path(spec.origin).parent


def _titled_bars(raw: pd.DataFrame, stamps: pd.Series, symbol: str) -> pd.DataFrame:
    """Bars from a table with ``Open, High, Low, Close, Volume`` columns."""
    out = pd.DataFrame({"timestamp": stamps, "symbol": symbol})
    for field in ("open", "high", "low", "close", "volume"):
        out[field] = raw[field.title()].astype(float)
    return out


def _read_yahoo_style(path: Path, symbol: str) -> pd.DataFrame:
    raw = pd.read_csv(path)
    return _titled_bars(raw, pd.to_datetime(raw["Date"], format="mixed", utc=True), symbol)


def _read_bokeh(path: Path, symbol: str) -> pd.DataFrame:
    """Split/dividend-adjusted OHLC: every price scaled by Adj Close / Close of its day."""
    raw = _bokeh_table(path)
    raw = raw[raw["Ticker"] == symbol]
    factor = raw["Adj Close"].to_numpy(float) / raw["Close"].to_numpy(float)
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(raw["Date"], utc=True).to_numpy(),
            "symbol": symbol,
            "open": raw["Open"].to_numpy(float) * factor,
            "high": raw["High"].to_numpy(float) * factor,
            "low": raw["Low"].to_numpy(float) * factor,
            "close": raw["Adj Close"].to_numpy(float),
            # volume in adjusted shares keeps notional volume unchanged
            "volume": raw["Volume"].to_numpy(float) / factor,
        }
    )


@lru_cache(maxsize=1)
def _bokeh_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def _read_eurusd(path: Path, symbol: str) -> pd.DataFrame:
    raw = pd.read_csv(path)
    stamps = pd.to_datetime(raw["Time"], format="%d.%m.%Y %H:%M:%S.%f", utc=True)
    return _titled_bars(raw, stamps, symbol)


def _read_macro(path: Path, symbol: str) -> pd.DataFrame:
    """A single-value macro series (VIX, WTI) as bars with open=high=low=close and no volume."""
    raw = pd.read_csv(path)
    value = pd.to_numeric(raw.iloc[:, 1], errors="coerce")  # WTI marks holidays with '.'
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(raw["Date"], format="mixed", utc=True),
            "symbol": symbol,
            "open": value,
            "high": value,
            "low": value,
            "close": value,
            "volume": np.nan,
        }
    )
    return frame.dropna(subset=["close"]).reset_index(drop=True)


_READERS: dict[str, Callable[[Path, str], pd.DataFrame]] = {
    "yahoo": _read_yahoo_style,
    "bokeh": _read_bokeh,
    "eurusd": _read_eurusd,
    "macro": _read_macro,
}

BUNDLED: dict[str, BundledSeries] = {
    s.symbol: s
    for s in (
        BundledSeries(
            "SP500",
            "arch",
            "data/sp500/sp500.csv.gz",
            "1d",
            "index",
            "S&P 500 index, daily OHLCV 1999-2018",
            "yahoo",
        ),
        BundledSeries(
            "NASDAQ",
            "arch",
            "data/nasdaq/nasdaq.csv.gz",
            "1d",
            "index",
            "NASDAQ composite, daily OHLCV 1999-2018",
            "yahoo",
        ),
        BundledSeries(
            "VIX",
            "arch",
            "data/vix/vix.csv.gz",
            "1d",
            "macro",
            "CBOE VIX close, daily 2014-2019",
            "macro",
        ),
        BundledSeries(
            "WTI",
            "arch",
            "data/wti/wti.csv.gz",
            "1d",
            "macro",
            "WTI crude oil spot, daily 1986-2019",
            "macro",
        ),
        BundledSeries(
            "AAPL",
            "bokeh_sampledata",
            "_data/stocks.csv.gz",
            "1d",
            "equity",
            "Apple, daily 2000-2013, split/dividend-adjusted",
            "bokeh",
        ),
        BundledSeries(
            "IBM",
            "bokeh_sampledata",
            "_data/stocks.csv.gz",
            "1d",
            "equity",
            "IBM, daily 2000-2013, split/dividend-adjusted",
            "bokeh",
        ),
        BundledSeries(
            "MSFT",
            "bokeh_sampledata",
            "_data/stocks.csv.gz",
            "1d",
            "equity",
            "Microsoft, daily 2000-2013, split/dividend-adjusted",
            "bokeh",
        ),
        BundledSeries(
            "GOOG",
            "bokeh_sampledata",
            "_data/stocks.csv.gz",
            "1d",
            "equity",
            "Google, daily 2004-2013, split/dividend-adjusted",
            "bokeh",
        ),
        BundledSeries(
            "GOOGL",
            "gym_anytrading",
            "datasets/data/STOCKS_GOOGL.csv",
            "1d",
            "equity",
            "Alphabet class A, daily 2009-2018",
            "yahoo",
        ),
        BundledSeries(
            "EURUSD",
            "gym_anytrading",
            "datasets/data/FOREX_EURUSD_1H_ASK.csv",
            "1h",
            "fx",
            "EUR/USD ask, hourly 2017",
            "eurusd",
        ),
    )
}


def bundled_frame(symbol: str) -> pd.DataFrame:
    """Long-format bars (timestamp, symbol, OHLCV) for one bundled instrument."""
    key = symbol.upper()
    if key not in BUNDLED:
        raise UnknownSymbolError(
            f"unknown bundled symbol {symbol!r}; available: {', '.join(sorted(BUNDLED))}"
        )
    series = BUNDLED[key]
    path = _package_dir(series.package) / series.relative_path
    if not path.is_file():
        raise SourceError(f"bundled file {path} is missing from package {series.package!r}")
    frame = _READERS[series.reader](path, key)
    return frame.sort_values("timestamp").reset_index(drop=True)


def load_bundled_panel(symbols: Sequence[str], frequency: str = "1d") -> BarPanel:
    """A panel of bundled instruments on the union of their timestamps (NaN where absent)."""
    for s in symbols:
        if s.upper() in BUNDLED and BUNDLED[s.upper()].frequency != frequency:
            raise UnknownSymbolError(
                f"bundled symbol {s!r} has frequency {BUNDLED[s.upper()].frequency!r}, "
                f"not {frequency!r}"
            )
    frames = [bundled_frame(s) for s in symbols]
    panel = BarPanel.from_frame(pd.concat(frames, ignore_index=True), frequency=frequency)
    order = [s.upper() for s in symbols]
    return panel.select(order)


MACRO_SERIES: tuple[str, ...] = ("VIX", "WTI")


def load_macro_series(name: str) -> pd.Series:
    """A macro series (``VIX`` close or ``WTI`` spot) as floats on a tz-aware UTC daily index.

    Each value is stamped with the day it was observed (start-of-day UTC, like every daily bar);
    it is known only after that day's close.
    """
    key = name.upper()
    if key not in MACRO_SERIES:
        raise UnknownSymbolError(
            f"unknown macro series {name!r}; available: {', '.join(MACRO_SERIES)}"
        )
    frame = bundled_frame(key)
    series = pd.Series(
        frame["close"].to_numpy(dtype=np.float64),
        index=pd.DatetimeIndex(frame["timestamp"]),
        name=key,
    )
    series.index.name = "timestamp"
    return series[~series.index.duplicated(keep="last")]


__all__ = [
    "BUNDLED",
    "MACRO_SERIES",
    "OHLCV",
    "BundledSeries",
    "bundled_frame",
    "load_bundled_panel",
    "load_macro_series",
]
