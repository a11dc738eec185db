"""Polygon.io REST (https://polygon.io/docs): aggregates, splits, dividends and financials.

The key comes from ``$POLYGON_API_KEY`` (or ``.env``) and travels in the ``Authorization``
header, so it never appears in URLs, logs or errors. Results are paged with ``next_url``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import numpy as np
import pandas as pd

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.frames import canonical_bars
from tradeforge.data.sources.base import frequency_parts
from tradeforge.data.sources.http import HttpJsonClient
from tradeforge.data.sources.keys import get_key, register_secret

BASE_URL = "https://api.polygon.io"
_EPOCH = date(1970, 1, 2)
_MAX_PAGES = 10_000


class PolygonSource:
    """Bars, corporate actions and point-in-time fundamentals from Polygon."""

    name = "polygon"

    def __init__(
        self,
        adjusted: bool = True,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        **client_options: Any,
    ) -> None:
        key = api_key or get_key("POLYGON_API_KEY", "polygon")
        register_secret(key)
        self.adjusted = adjusted
        self.client = HttpJsonClient(
            "polygon",
            BASE_URL,
            headers={"Authorization": f"Bearer {key}"},
            key_hint="$POLYGON_API_KEY",
            transport=transport,
            **client_options,
        )

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        url: str | None = path
        query: dict[str, Any] | None = params
        for _ in range(_MAX_PAGES):
            if url is None:
                return
            payload = self.client.get_json(url, query)
            if not isinstance(payload, dict):
                raise SourceError(
                    f"polygon: expected a JSON object from {path}, got {type(payload).__name__}"
                )
            status = str(payload.get("status", "OK")).upper()
            if status in ("ERROR", "NOT_AUTHORIZED"):
                message = payload.get("error") or payload.get("message") or "unknown error"
                raise SourceError(f"polygon: {status} for {path}: {message}")
            yield payload
            url, query = payload.get("next_url"), None  # next_url carries its own query
        raise SourceError(f"polygon: more than {_MAX_PAGES} pages for {path}; narrow the range")

    def fetch_bars(
        self, symbol: str, frequency: str, start: date | None = None, end: date | None = None
    ) -> pd.DataFrame:
        multiplier, unit = frequency_parts(frequency, "polygon")
        lo = (start or _EPOCH).isoformat()
        hi = (end or date.today()).isoformat()
        path = f"/v2/aggs/ticker/{symbol}/range/{multiplier}/{unit}/{lo}/{hi}"
        params = {"adjusted": str(self.adjusted).lower(), "sort": "asc", "limit": 50000}
        rows: list[dict[str, Any]] = []
        for page in self._pages(path, params):
            rows.extend(page.get("results") or [])
        if not rows:
            return pd.DataFrame(columns=["timestamp", "open", "high", "low", "close", "volume"])
        raw = pd.DataFrame(rows)
        missing = [k for k in ("t", "o", "h", "l", "c") if k not in raw.columns]
        if missing:
            raise SourceError(f"polygon: aggregate results lack fields {missing} for {symbol}")
        frame = pd.DataFrame(
            {
                "timestamp": pd.to_datetime(raw["t"].astype("int64"), unit="ms", utc=True),
                "open": raw["o"],
                "high": raw["h"],
                "low": raw["l"],
                "close": raw["c"],
                "volume": raw.get("v", np.nan),
            }
        )
        if "vw" in raw:
            frame["vwap"] = raw["vw"]
        if "n" in raw:
            frame["trades"] = raw["n"]
        if frequency in ("1d", "1w"):
            # stock/index day bars are stamped at New York midnight, crypto/FX at UTC midnight;
            # keep the trading date at 00:00 UTC like every other daily source
            tz = "UTC" if symbol.startswith(("X:", "C:")) else "America/New_York"
            frame["timestamp"] = (
                frame["timestamp"].dt.tz_convert(tz).dt.normalize().dt.tz_localize(None)
            )
        return canonical_bars(frame, f"polygon {symbol}")

    def fetch_actions(self, symbol: str) -> pd.DataFrame:
        """Splits (value = split_to / split_from) and cash dividends, by ex-date."""
        rows: list[dict[str, Any]] = []
        for page in self._pages("/v3/reference/splits", {"ticker": symbol, "limit": 1000}):
            for item in page.get("results") or []:
                ratio = float(item["split_to"]) / float(item["split_from"])
                rows.append({"ex_date": item["execution_date"], "kind": "split", "value": ratio})
        for page in self._pages("/v3/reference/dividends", {"ticker": symbol, "limit": 1000}):
            for item in page.get("results") or []:
                rows.append(
                    {
                        "ex_date": item["ex_dividend_date"],
                        "kind": "dividend",
                        "value": float(item["cash_amount"]),
                    }
                )
        return _actions_frame(rows)

    def fetch_fundamentals(self, symbol: str) -> pd.DataFrame:
        """Reported financials, one row per filing, stamped by its ``filing_date``.

        Point-in-time: a figure is usable only from its filing date on; rows without a filing
        date are dropped rather than guessed.
        """
        rows: list[dict[str, Any]] = []
        params = {"ticker": symbol, "limit": 100, "order": "asc", "sort": "filing_date"}
        for page in self._pages("/vX/reference/financials", params):
            for item in page.get("results") or []:
                if not item.get("filing_date"):
                    continue
                base = {
                    "published": item["filing_date"],
                    "period_end": item.get("end_date"),
                    "fiscal_period": item.get("fiscal_period"),
                    "fiscal_year": item.get("fiscal_year"),
                }
                for statement, fields in (item.get("financials") or {}).items():
                    for name, entry in fields.items():
                        if isinstance(entry, dict) and "value" in entry:
                            rows.append(
                                {
                                    **base,
                                    "item": f"{statement}.{name}",
                                    "value": float(entry["value"]),
                                }
                            )
        return _fundamentals_frame(rows, symbol, "polygon")


def _actions_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["ex_date", "kind", "value"])
    frame["ex_date"] = pd.to_datetime(frame["ex_date"], utc=True)
    frame["value"] = frame["value"].astype(np.float64)
    return frame.sort_values(["ex_date", "kind"]).reset_index(drop=True)


def _fundamentals_frame(rows: list[dict[str, Any]], symbol: str, vendor: str) -> pd.DataFrame:
    if not rows:
        raise UnknownSymbolError(
            f"{vendor}: no fundamentals with a publication date for {symbol!r}"
        )
    frame = pd.DataFrame(rows)
    frame["published"] = pd.to_datetime(frame["published"], utc=True)
    frame["period_end"] = pd.to_datetime(frame["period_end"], utc=True)
    return frame.sort_values(["published", "item"]).reset_index(drop=True)


__all__ = ["PolygonSource"]
