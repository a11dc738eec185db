"""Crypto exchanges through ``ccxt`` (optional extra ``crypto``): OHLCV paged by ``since``.

``exchange`` may be any object with ccxt's ``fetch_ohlcv(symbol, timeframe, since, limit)``
and ``parse_timeframe`` (tests use a fake exchange replaying recorded candles). ccxt's own
rate limiter is enabled; rate-limit and network errors are retried a bounded number of times,
waiting as long as the exchange's ``Retry-After`` header asks, else with exponential backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.frames import canonical_bars
from tradeforge.data.resample import period
from tradeforge.data.sources.http import retry_delay

_TIMEFRAMES = {
    "1m": "1m",
    "5m": "5m",
    "15m": "15m",
    "30m": "30m",
    "1h": "1h",
    "4h": "4h",
    "1d": "1d",
    "1w": "1w",
}


class CcxtSource:
    """OHLCV candles from one ccxt exchange (``binance`` unless configured)."""

    name = "ccxt"

    def __init__(
        self,
        exchange_id: str = "binance",
        exchange: Any = None,
        page_limit: int = 1000,
        max_pages: int = 10_000,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_wait_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.exchange = exchange if exchange is not None else _make_exchange(exchange_id)
        self.page_limit = page_limit
        self.max_pages = max_pages
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        self._now = now or (lambda: datetime.now(UTC))

    def _page(self, symbol: str, timeframe: str, since: int) -> list[list[float]]:
        import ccxt

        for attempt in range(self.max_retries + 1):
            try:
                rows: list[list[float]] = self.exchange.fetch_ohlcv(
                    symbol, timeframe, since=since, limit=self.page_limit
                )
                return rows
            except ccxt.BadSymbol as exc:
                raise UnknownSymbolError(
                    f"ccxt: unknown symbol {symbol!r} ({str(exc)[:120]})"
                ) from None
            except (ccxt.RateLimitExceeded, ccxt.NetworkError) as exc:
                if attempt >= self.max_retries:
                    raise SourceError(
                        f"ccxt: {type(exc).__name__} after {attempt + 1} attempts for {symbol!r}; "
                        "retry later"
                    ) from None
                self._sleep(
                    retry_delay(attempt, self._retry_after(), self.backoff_s, self.max_wait_s)
                )
            except ccxt.BaseError as exc:
                raise SourceError(
                    f"ccxt: {type(exc).__name__} for {symbol!r}: {str(exc)[:160]}"
                ) from None
        raise SourceError("ccxt: unreachable")  # pragma: no cover

    def _retry_after(self) -> str | None:
        headers = getattr(self.exchange, "last_response_headers", None) or {}
        for name in ("Retry-After", "retry-after"):
            if name in headers:
                return str(headers[name])
        return None

    def fetch_bars(
        self, symbol: str, frequency: str, start: date | None = None, end: date | None = None
    ) -> pd.DataFrame:
        if frequency not in _TIMEFRAMES:
            raise SourceError(
                f"ccxt: frequency {frequency!r} is not supported; use {list(_TIMEFRAMES)}"
            )
        step_ms = int(period(frequency).total_seconds() * 1000)
        since = int(pd.Timestamp(start or date(2017, 1, 1), tz="UTC").value // 1_000_000)
        stop = (
            pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
            if end is not None
            else pd.Timestamp(self._now())
        )
        stop_ms = int(stop.value // 1_000_000)
        rows: list[list[float]] = []
        for _ in range(self.max_pages):
            page = self._page(symbol, _TIMEFRAMES[frequency], since)
            page = [r for r in page if since <= r[0] < stop_ms]
            if not page:
                break
            rows.extend(page)
            since = int(page[-1][0]) + step_ms
            if since >= stop_ms:
                break
        # the candle still forming (its interval not over yet) is not a bar
        now_ms = int(pd.Timestamp(self._now()).value // 1_000_000)
        rows = [r for r in rows if r[0] + step_ms <= now_ms]
        if not rows:
            return pd.DataFrame(columns=["timestamp", "open", "high", "low", "close", "volume"])
        frame = pd.DataFrame(rows, columns=["t", "open", "high", "low", "close", "volume"])
        frame.insert(
            0, "timestamp", pd.to_datetime(frame.pop("t").astype("int64"), unit="ms", utc=True)
        )
        return canonical_bars(frame, f"ccxt {symbol}")


def _make_exchange(exchange_id: str) -> Any:
    try:
        import ccxt
    except ImportError:
        raise SourceError(
            "source 'ccxt' needs the optional extra: pip install 'tradeforge[crypto]'"
        ) from None
    cls = getattr(ccxt, exchange_id, None)
    if cls is None:
        raise SourceError(f"ccxt: unknown exchange {exchange_id!r}; see ccxt.exchanges for names")
    return cls({"enableRateLimit": True})


__all__ = ["CcxtSource"]
