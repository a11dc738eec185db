"""Alpha Vantage (https://www.alphavantage.co/documentation/): daily/intraday bars, splits and
dividends from the adjusted daily series, and earnings stamped by their report date.

Alpha Vantage reports problems inside HTTP 200 answers (``Error Message``, ``Note``,
``Information``); a ``Note``/``Information`` about call frequency is treated as a rate limit
and retried with backoff, up to the client's retry bound. The key goes in the ``apikey`` query
parameter (the API allows nothing else), so every message is passed through redaction.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import numpy as np
import pandas as pd

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.frames import canonical_bars
from tradeforge.data.sources.base import frequency_parts
from tradeforge.data.sources.http import HttpJsonClient
from tradeforge.data.sources.keys import get_key, redact
from tradeforge.data.sources.polygon import _actions_frame, _fundamentals_frame

BASE_URL = "https://www.alphavantage.co"
_INTRADAY = {"1m": "1min", "5m": "5min", "15m": "15min", "30m": "30min", "1h": "60min"}
_RATE_WORDS = ("call frequency", "rate limit", "per minute", "api call volume")


class AlphaVantageSource:
    """Bars, splits/dividends and point-in-time earnings from Alpha Vantage."""

    name = "alphavantage"

    def __init__(
        self,
        adjusted: bool = True,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        rate_limit_retries: int = 3,
        **client_options: Any,
    ) -> None:
        self._key = api_key or get_key("ALPHAVANTAGE_API_KEY", "alphavantage")
        self.adjusted = adjusted
        self.rate_limit_retries = rate_limit_retries
        client_options.setdefault("min_interval_s", 0.0)
        self.client = HttpJsonClient(
            "alphavantage",
            BASE_URL,
            params={"apikey": self._key},
            key_hint="$ALPHAVANTAGE_API_KEY",
            transport=transport,
            **client_options,
        )

    def _query(self, params: dict[str, str]) -> dict[str, Any]:
        for attempt in range(self.rate_limit_retries + 1):
            payload = self.client.get_json("/query", params)
            if not isinstance(payload, dict):
                raise SourceError("alphavantage: expected a JSON object")
            if "Error Message" in payload:
                message = redact(str(payload["Error Message"]), (self._key,))
                if "invalid api call" in message.lower():
                    raise UnknownSymbolError(
                        f"alphavantage: {params.get('function')} failed for "
                        f"{params.get('symbol')!r}: {message[:160]}; check the symbol"
                    )
                raise SourceError(f"alphavantage: {message[:200]}")
            notice = str(payload.get("Note") or payload.get("Information") or "")
            if notice and len(payload) == 1:
                if (
                    any(w in notice.lower() for w in _RATE_WORDS)
                    and attempt < self.rate_limit_retries
                ):
                    self.client.wait(attempt, None)
                    continue
                raise SourceError(
                    f"alphavantage: {redact(notice, (self._key,))[:200]}; wait, or use a "
                    "premium key for this endpoint"
                )
            return payload
        raise SourceError("alphavantage: rate limited; retry later")  # pragma: no cover

    def _series(self, symbol: str, frequency: str) -> tuple[dict[str, Any], str]:
        frequency_parts(frequency, "alphavantage")
        if frequency in _INTRADAY:
            params = {
                "function": "TIME_SERIES_INTRADAY",
                "symbol": symbol,
                "interval": _INTRADAY[frequency],
                "outputsize": "full",
                "adjusted": str(self.adjusted).lower(),
            }
        elif frequency == "1d":
            function = "TIME_SERIES_DAILY_ADJUSTED" if self.adjusted else "TIME_SERIES_DAILY"
            params = {"function": function, "symbol": symbol, "outputsize": "full"}
        else:
            raise SourceError(
                f"alphavantage: frequency {frequency!r} is not offered; use 1m-1h or 1d "
                "(and resample)"
            )
        payload = self._query(params)
        key = next((k for k in payload if k.startswith("Time Series")), None)
        if key is None:
            raise SourceError(f"alphavantage: no time series in the answer for {symbol!r}")
        meta = payload.get("Meta Data", {})
        tz = next((v for k, v in meta.items() if "Time Zone" in k), "US/Eastern")
        return payload[key], str(tz)

    def fetch_bars(
        self, symbol: str, frequency: str, start: date | None = None, end: date | None = None
    ) -> pd.DataFrame:
        series, tz = self._series(symbol, frequency)
        frame = _series_frame(series)
        if frequency == "1d":
            stamps = pd.to_datetime(frame.index).tz_localize("UTC")  # a trading date
        else:
            stamps = pd.to_datetime(frame.index).tz_localize(tz, ambiguous="NaT").tz_convert("UTC")
            # Alpha Vantage stamps intraday bars at their end; move to the start convention
            stamps = stamps - pd.Timedelta(_INTRADAY[frequency])
        out = pd.DataFrame({"timestamp": stamps})
        for field in ("open", "high", "low", "close", "volume"):
            out[field] = frame[field].to_numpy(np.float64)
        if self.adjusted and "adjusted close" in frame:
            factor = frame["adjusted close"].to_numpy(np.float64) / out["close"].to_numpy()
            for field in ("open", "high", "low"):
                out[field] = out[field] * factor
            out["close"] = frame["adjusted close"].to_numpy(np.float64)
            out["volume"] = out["volume"] / factor
        out = out.dropna(subset=["timestamp"])
        bars = canonical_bars(out, f"alphavantage {symbol}")
        stamps_idx = pd.DatetimeIndex(bars["timestamp"])
        keep = np.ones(len(bars), dtype=bool)
        if start is not None:
            keep &= stamps_idx >= pd.Timestamp(start, tz="UTC")
        if end is not None:
            keep &= stamps_idx < pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
        return bars.loc[keep].sort_values("timestamp").reset_index(drop=True)

    def fetch_actions(self, symbol: str) -> pd.DataFrame:
        series, _ = self._series(symbol, "1d") if self.adjusted else ({}, "")
        frame = _series_frame(series) if series else pd.DataFrame()
        rows: list[dict[str, Any]] = []
        if "split coefficient" in frame:
            for day, value in frame["split coefficient"].items():
                if value != 1.0:
                    rows.append({"ex_date": day, "kind": "split", "value": value})
        if "dividend amount" in frame:
            for day, value in frame["dividend amount"].items():
                if value > 0:
                    rows.append({"ex_date": day, "kind": "dividend", "value": value})
        return _actions_frame(rows)

    def fetch_fundamentals(self, symbol: str) -> pd.DataFrame:
        """Quarterly earnings, stamped by ``reportedDate`` (when the market learned them)."""
        payload = self._query({"function": "EARNINGS", "symbol": symbol})
        rows: list[dict[str, Any]] = []
        for item in payload.get("quarterlyEarnings") or []:
            published = item.get("reportedDate")
            if not published:
                continue
            for name in ("reportedEPS", "estimatedEPS", "surprise"):
                value = pd.to_numeric(item.get(name), errors="coerce")
                if pd.notna(value):
                    rows.append(
                        {
                            "published": published,
                            "period_end": item.get("fiscalDateEnding"),
                            "fiscal_period": "Q",
                            "fiscal_year": str(item.get("fiscalDateEnding", ""))[:4],
                            "item": f"earnings.{name}",
                            "value": float(value),
                        }
                    )
        return _fundamentals_frame(rows, symbol, "alphavantage")


def _series_frame(series: dict[str, Any]) -> pd.DataFrame:
    """``{"2024-01-02": {"1. open": "..."}}`` as a float frame with plain column names."""
    if not isinstance(series, dict) or not series:
        return pd.DataFrame(columns=["open", "high", "low", "close", "volume"])
    frame = pd.DataFrame.from_dict(series, orient="index")
    frame.columns = [c.split(". ", 1)[-1] for c in frame.columns]
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in frame]
    if missing:
        raise SourceError(f"alphavantage: time series lacks fields {missing}")
    numeric: pd.DataFrame = frame.apply(pd.to_numeric, errors="coerce")
    return numeric.sort_index()


__all__ = ["AlphaVantageSource"]
