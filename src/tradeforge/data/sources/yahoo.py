"""Yahoo Finance through ``yfinance``: bars plus the splits and dividends it reports.

Yahoo has no official API and ``yfinance`` is its community client; its answers change without
notice, so every failure becomes a one-line :class:`SourceError`. ``session`` is handed to
``yfinance`` (a ``requests.Session``; tests mount recorded answers on one).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.frames import canonical_bars
from tradeforge.data.sources.base import frequency_parts
from tradeforge.data.sources.polygon import _actions_frame

_INTERVALS = {
    "1m": "1m",
    "5m": "5m",
    "15m": "15m",
    "30m": "30m",
    "1h": "60m",
    "1d": "1d",
    "1w": "1wk",
}


@contextlib.contextmanager
def _exceptions_raised() -> Iterator[dict[str, Any]]:
    """Make yfinance raise instead of logging and returning an empty frame.

    yfinance >= 1.0 reads ``yf.config.debug.hide_exceptions`` (``raise_errors=`` is deprecated);
    it is switched off for the call and restored. Older versions take ``raise_errors=True``.
    """
    import yfinance as yf

    debug = getattr(getattr(yf, "config", None), "debug", None)
    if debug is None or not hasattr(debug, "hide_exceptions"):
        yield {"raise_errors": True}
        return
    before = debug.hide_exceptions
    debug.hide_exceptions = False
    try:
        yield {}
    finally:
        debug.hide_exceptions = before


class YahooSource:
    """Bars (auto-adjusted for splits and dividends by default) and actions from Yahoo."""

    name = "yfinance"

    def __init__(self, adjusted: bool = True, session: Any = None) -> None:
        self.adjusted = adjusted
        self.session = session

    def _ticker(self, symbol: str) -> Any:
        import yfinance as yf

        return yf.Ticker(symbol, session=self.session)

    def _history(
        self, symbol: str, frequency: str, start: date | None, end: date | None
    ) -> pd.DataFrame:
        frequency_parts(frequency, "yfinance")
        if frequency == "4h":
            raise SourceError("yfinance: 4h bars are not offered; fetch 1h and resample")
        kwargs: dict[str, Any] = {
            "interval": _INTERVALS[frequency],
            "auto_adjust": self.adjusted,
            "actions": True,
        }
        if start is None and end is None:
            kwargs["period"] = "max"
        else:
            kwargs["start"] = (start or date(1970, 1, 2)).isoformat()
            if end is not None:
                kwargs["end"] = (end + timedelta(days=1)).isoformat()  # yfinance's end is exclusive
        try:
            with _exceptions_raised() as legacy:
                history: pd.DataFrame = self._ticker(symbol).history(**kwargs, **legacy)
        except Exception as exc:
            text = " ".join(str(exc).split())[:200]
            lowered = text.lower()
            if any(w in lowered for w in ("delisted", "not found", "no data", "404 client")):
                raise UnknownSymbolError(
                    f"yfinance: no data for {symbol!r} ({text}); check the symbol"
                ) from None
            raise SourceError(
                f"yfinance: request for {symbol!r} failed ({type(exc).__name__}: {text})"
            ) from None
        return history

    def fetch_bars(
        self, symbol: str, frequency: str, start: date | None = None, end: date | None = None
    ) -> pd.DataFrame:
        history = self._history(symbol, frequency, start, end)
        if history.empty:
            return pd.DataFrame(columns=["timestamp", "open", "high", "low", "close", "volume"])
        index = pd.DatetimeIndex(history.index)
        if frequency in ("1d", "1w"):
            index = index.tz_localize(None) if index.tz is not None else index  # trading date
        frame = pd.DataFrame(
            {
                "timestamp": index,
                "open": history["Open"].to_numpy(np.float64),
                "high": history["High"].to_numpy(np.float64),
                "low": history["Low"].to_numpy(np.float64),
                "close": history["Close"].to_numpy(np.float64),
                "volume": history["Volume"].to_numpy(np.float64),
            }
        )
        return canonical_bars(frame, f"yfinance {symbol}")

    def fetch_actions(self, symbol: str) -> pd.DataFrame:
        history = self._history(symbol, "1d", None, None)
        rows: list[dict[str, Any]] = []
        days = pd.DatetimeIndex(history.index)
        days = days.tz_localize(None) if days.tz is not None else days
        for column, kind in (("Stock Splits", "split"), ("Dividends", "dividend")):
            if column in history:
                values = history[column].to_numpy(np.float64)
                for day, value in zip(days, values, strict=True):
                    if value > 0:
                        rows.append(
                            {"ex_date": day.date().isoformat(), "kind": kind, "value": value}
                        )
        return _actions_frame(rows)


__all__ = ["YahooSource"]
