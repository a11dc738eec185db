"""Alpaca market data through the official ``alpaca-py`` SDK: stock and crypto bars.

Keys come from ``$ALPACA_API_KEY``/``$ALPACA_SECRET_KEY`` (or the SDK's ``APCA_API_KEY_ID``/
``APCA_API_SECRET_KEY``), from the environment or ``.env``; crypto bars need no key. The SDK
pages through ``next_page_token`` itself. Its own 429 retry sleeps a fixed time, so it is
switched off and the SDK's session is wrapped in :class:`RetryingSession`, which retries 429 and
5xx answers a bounded number of times, waiting as long as ``Retry-After`` asks (else exponential
backoff). SDK errors become one-line :class:`SourceError` messages with keys redacted.
``session`` is the ``requests.Session`` that really talks HTTP (tests mount a recorded-response
adapter on it).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.frames import canonical_bars
from tradeforge.data.sources.base import frequency_parts
from tradeforge.data.sources.http import RETRY_STATUS, retry_delay
from tradeforge.data.sources.keys import get_key, redact, register_secret

logger = logging.getLogger("tradeforge.data.alpaca")

_UNITS = {"minute": "Min", "hour": "Hour", "day": "Day", "week": "Week"}


def _alpaca_keys() -> tuple[str, str]:
    for key_var, secret_var in (
        ("ALPACA_API_KEY", "ALPACA_SECRET_KEY"),
        ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY"),
    ):
        if os.environ.get(key_var) and os.environ.get(secret_var):
            return get_key(key_var, "alpaca"), get_key(secret_var, "alpaca")
    return get_key("ALPACA_API_KEY", "alpaca"), get_key("ALPACA_SECRET_KEY", "alpaca")


class RetryingSession:
    """Wraps a ``requests.Session``: retries 429/5xx up to ``max_retries`` times per request,
    honouring ``Retry-After``; the last answer is returned as is (the SDK turns it into an error).
    """

    def __init__(
        self,
        inner: Any,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_wait_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        self.calls = 0

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            self.calls += 1
            response = self.inner.request(method, url, **kwargs)
            if response.status_code not in RETRY_STATUS or attempt >= self.max_retries:
                return response
            delay = retry_delay(
                attempt, response.headers.get("Retry-After"), self.backoff_s, self.max_wait_s
            )
            logger.info("alpaca: HTTP %d, retrying in %.2fs", response.status_code, delay)
            self._sleep(delay)
            attempt += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class AlpacaSource:
    """Stock (``asset_class="equity"``) or crypto bars from Alpaca's market data API."""

    name = "alpaca"

    def __init__(
        self,
        asset_class: str = "equity",
        adjusted: bool = True,
        api_key: str | None = None,
        secret_key: str | None = None,
        feed: str | None = None,
        session: Any = None,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_wait_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if asset_class not in ("equity", "crypto"):
            raise SourceError(
                f"alpaca: asset_class {asset_class!r} is not offered; use 'equity' or 'crypto'"
            )
        self.asset_class = asset_class
        self.adjusted = adjusted
        self.feed = feed
        if asset_class == "equity" and (api_key is None or secret_key is None):
            api_key, secret_key = _alpaca_keys()
        for value in (api_key, secret_key):
            if value:
                register_secret(value)
        self._secrets = tuple(v for v in (api_key, secret_key) if v)
        self._client = self._make_client(api_key, secret_key)
        inner = session if session is not None else self._client._session
        self.session = RetryingSession(inner, max_retries, backoff_s, max_wait_s, sleep)
        self._client._session = self.session
        self._client._retry = 0  # RetryingSession retries, honouring Retry-After

    def _make_client(self, api_key: str | None, secret_key: str | None) -> Any:
        from alpaca.data.historical import CryptoHistoricalDataClient, StockHistoricalDataClient

        if self.asset_class == "crypto":
            return CryptoHistoricalDataClient(api_key, secret_key, raw_data=True)
        return StockHistoricalDataClient(api_key, secret_key, raw_data=True)

    def fetch_bars(
        self, symbol: str, frequency: str, start: date | None = None, end: date | None = None
    ) -> pd.DataFrame:
        from alpaca.common.exceptions import APIError
        from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest
        from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

        amount, unit = frequency_parts(frequency, "alpaca")
        timeframe = TimeFrame(amount, TimeFrameUnit(_UNITS[unit]))
        lo = datetime.combine(start or date(2015, 1, 1), datetime.min.time(), tzinfo=UTC)
        hi = datetime.combine(end, datetime.max.time(), tzinfo=UTC) if end else None
        try:
            if self.asset_class == "crypto":
                request: Any = CryptoBarsRequest(
                    symbol_or_symbols=symbol, timeframe=timeframe, start=lo, end=hi
                )
                raw = self._client.get_crypto_bars(request)
            else:
                fields: dict[str, Any] = {
                    "symbol_or_symbols": symbol,
                    "timeframe": timeframe,
                    "start": lo,
                    "end": hi,
                    "adjustment": "all" if self.adjusted else "raw",
                }
                if self.feed:
                    fields["feed"] = self.feed
                raw = self._client.get_stock_bars(StockBarsRequest(**fields))
        except APIError as exc:
            message = redact(" ".join(str(exc).split()), self._secrets)[:200]
            code = getattr(exc, "status_code", None)
            if message.lower().startswith(("<!doctype", "<html")):
                raise SourceError(
                    f"alpaca: got an HTML error page (HTTP {code}) instead of JSON for "
                    f"{symbol!r}; the service may be down, retry later"
                ) from None
            if code == 429:
                raise SourceError(
                    f"alpaca: still rate-limited (HTTP 429) after {self.session.max_retries} "
                    "retries; wait and retry, or lower the request rate"
                ) from None
            if code in (401, 403):
                raise SourceError(
                    f"alpaca: the API key was rejected (HTTP {code}: {message}); check "
                    "$ALPACA_API_KEY and $ALPACA_SECRET_KEY"
                ) from None
            if code in (400, 404, 422) and "symbol" in message.lower():
                raise UnknownSymbolError(f"alpaca: unknown symbol {symbol!r}: {message}") from None
            raise SourceError(f"alpaca: request for {symbol!r} failed: {message}") from None
        except ValueError as exc:  # JSON decoding of an HTML page answered with 200, etc.
            raise SourceError(
                f"alpaca: unreadable answer for {symbol!r} ({str(exc)[:100]}); the service may "
                "be down, retry later"
            ) from None
        except OSError as exc:  # requests' ConnectionError, Timeout, ... derive from it
            text = redact(str(exc), self._secrets)[:120]
            raise SourceError(
                f"alpaca: network error for {symbol!r} ({type(exc).__name__}: {text}); check "
                "your connection and retry"
            ) from None
        bars = (raw or {}).get(symbol) or []
        if not bars:
            return pd.DataFrame(columns=["timestamp", "open", "high", "low", "close", "volume"])
        table = pd.DataFrame(bars)
        frame = pd.DataFrame(
            {
                "timestamp": pd.to_datetime(table["t"], utc=True),
                "open": table["o"],
                "high": table["h"],
                "low": table["l"],
                "close": table["c"],
                "volume": table.get("v", np.nan),
            }
        )
        if "vw" in table:
            frame["vwap"] = table["vw"]
        if "n" in table:
            frame["trades"] = table["n"]
        if frequency in ("1d", "1w"):
            # daily bars are stamped at the session's local midnight; keep the trading date
            frame["timestamp"] = (
                frame["timestamp"]
                .dt.tz_convert("America/New_York")
                .dt.normalize()
                .dt.tz_localize(None)
                if self.asset_class == "equity"
                else frame["timestamp"].dt.tz_localize(None)
            )
        return canonical_bars(frame, f"alpaca {symbol}")


__all__ = ["AlpacaSource", "RetryingSession"]
