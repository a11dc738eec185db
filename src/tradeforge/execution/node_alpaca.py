"""The trading node on Alpaca's API: bars from the market-data REST API and the venue clock.

* :class:`AlpacaBarFeed` reads bars with alpaca-py's ``StockHistoricalDataClient`` (raw mode)
  from Alpaca or the local venue (``url``), with the SDK's fixed-wait retries off and explicit
  timeouts (research/broker.md section 1). Bars are checked as they are assembled (case 20):
  out-of-order bars are sorted, an exact duplicate is dropped and a duplicate timestamp with
  other values is an error; an empty answer is "no bar yet" (case 22). Only ``t, o, h, l, c,
  v`` (and ``vw`` when the source has it) are read, so a missing ``n`` is no error.
* :class:`VenueBarClock` is the replay clock of the local venue: ``/v2/clock`` says which bar
  closed last, ``POST /admin/advance`` moves it one bar once the node has traded it.
* :class:`WallBarClock` is Alpaca's own clock: ``advance`` waits for the next close and for its
  bar to be published.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.data.panel import BarPanel
from tradeforge.execution.errors import BrokerError
from tradeforge.execution.node_feed import MarketBar, NodeDataError, utc

logger = logging.getLogger(__name__)

_TIMEFRAME_UNITS = {"Min": "Minute", "Hour": "Hour", "Day": "Day", "Week": "Week", "Month": "Month"}
_TIMEFRAMES = {"1m": "1Min", "5m": "5Min", "15m": "15Min", "30m": "30Min", "1h": "1Hour",
               "4h": "4Hour", "1d": "1Day", "1w": "1Week"}  # fmt: skip


def _timeframe(frequency: str) -> Any:
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

    text = _TIMEFRAMES.get(frequency)
    if text is None:
        raise NodeDataError(
            f"frequency = {frequency!r} has no Alpaca timeframe; expected one of "
            f"{', '.join(_TIMEFRAMES)}"
        )
    digits = "".join(ch for ch in text if ch.isdigit())
    unit = getattr(TimeFrameUnit, _TIMEFRAME_UNITS[text[len(digits) :]])
    return TimeFrame(int(digits), unit)


def _timeouts(client: Any, connect_s: float, read_s: float) -> None:
    """Turn off the SDK's own retries (fixed 3 s waits) and give every request timeouts."""
    from requests.adapters import HTTPAdapter

    client._retry = 0
    client._retry_codes = []
    timeout = (connect_s, read_s)

    class _TimeoutAdapter(HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout
            return super().send(request, **kwargs)

    adapter = _TimeoutAdapter(max_retries=0)
    client._session.mount("http://", adapter)
    client._session.mount("https://", adapter)


def assemble(raw: dict[str, Any], symbols: Sequence[str], frequency: str) -> BarPanel | None:
    """A panel from raw ``{symbol: [bar, ...]}`` bars (None when there is no bar at all)."""
    rows: dict[pd.Timestamp, dict[str, dict[str, Any]]] = {}
    has_vwap = False
    for symbol in symbols:
        for item in raw.get(symbol) or ():
            ts = utc(item["t"])
            bar = {k: item.get(k) for k in ("o", "h", "l", "c", "v", "vw")}
            seen = rows.setdefault(ts, {}).get(symbol)
            if seen is not None and seen != bar:
                raise NodeDataError(
                    f"{symbol} has two different bars at {ts.isoformat()} ({seen} and {bar}); "
                    "expected one bar per timestamp"
                )
            rows[ts][symbol] = bar
            has_vwap = has_vwap or bar["vw"] is not None
    if not rows:
        return None
    index = pd.DatetimeIndex(sorted(rows))
    shape = (len(index), len(symbols))
    arrays = {k: np.full(shape, np.nan) for k in ("o", "h", "l", "c", "v", "vw")}
    for i, ts in enumerate(index):
        for j, symbol in enumerate(symbols):
            found = rows[ts].get(symbol)
            if found is not None:
                for k, arr in arrays.items():
                    value = found[k]
                    arr[i, j] = np.nan if value is None else float(value)
    extra = {"vwap": arrays["vw"]} if has_vwap else {}
    return BarPanel(index, tuple(symbols), arrays["o"], arrays["h"], arrays["l"], arrays["c"],
                    arrays["v"], frequency=frequency, extra=extra)  # fmt: skip


class AlpacaBarFeed:
    """Bars of ``symbols`` since ``history_start`` from Alpaca's data API (or the venue's)."""

    def __init__(
        self,
        symbols: Sequence[str],
        frequency: str,
        history_start: datetime,
        *,
        api_key: str,
        secret_key: str,
        url: str | None = None,
        data_feed: str | None = None,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
        attempts: int = 3,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._symbols = tuple(symbols)
        self.frequency = frequency
        self.history_start = utc(history_start)
        self.timeframe = _timeframe(frequency)
        self.data_feed = data_feed
        self.attempts = attempts
        self._sleep = sleep
        if client is None:
            from alpaca.data.historical import StockHistoricalDataClient

            client = StockHistoricalDataClient(api_key, secret_key, raw_data=True,
                                               url_override=url)  # fmt: skip
        _timeouts(client, connect_timeout_s, read_timeout_s)
        self._client = client

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    def close(self) -> None:
        self._client._session.close()

    def _bars(self, start: datetime, end: datetime) -> BarPanel | None:
        from alpaca.data.requests import StockBarsRequest

        request = StockBarsRequest(symbol_or_symbols=list(self._symbols), timeframe=self.timeframe,
                                   start=utc(start).to_pydatetime(), end=utc(end).to_pydatetime(),
                                   feed=self.data_feed)  # fmt: skip
        for attempt in range(1, self.attempts + 1):
            try:
                raw = self._client.get_stock_bars(request)
                break
            except Exception as exc:  # SDK (APIError), requests and JSON errors alike
                if attempt == self.attempts:
                    raise NodeDataError(
                        f"bars {utc(start).isoformat()}..{utc(end).isoformat()} for "
                        f"{list(self._symbols)}: {type(exc).__name__}: {exc}"
                    ) from exc
                self._sleep(0.1 * 2**attempt)
        return assemble(raw if isinstance(raw, dict) else {}, self._symbols, self.frequency)

    def history(self, end: datetime) -> BarPanel:
        panel = self._bars(self.history_start, end)
        if panel is None:
            raise NodeDataError(
                f"no bars for {list(self._symbols)} between {self.history_start.isoformat()} and "
                f"{utc(end).isoformat()}; expected the history the features need"
            )
        return panel

    def bar(self, timestamp: datetime) -> MarketBar | None:
        panel = self._bars(timestamp, timestamp)
        if panel is None or utc(timestamp) not in panel.index:
            return None
        return MarketBar.from_panel(panel, int(np.flatnonzero(panel.index == utc(timestamp))[0]))

    def latest(self, now: datetime, lookback: timedelta) -> pd.Timestamp | None:
        panel = self._bars(utc(now) - lookback, now)
        return None if panel is None else panel.index[-1]


class VenueBarClock:
    """The local venue's replay clock, read through ``broker.clock()`` (``/v2/clock``) and
    moved with ``POST {url}/admin/advance``."""

    replay = True

    def __init__(self, url: str, broker: Any, *, timeout_s: float = 10.0) -> None:
        import requests

        self.url = url
        self.broker = broker
        self.timeout_s = timeout_s
        self._http = requests.Session()
        self._clock: Any = None

    def close(self) -> None:
        self._http.close()

    def _read(self) -> Any:
        if self._clock is None:
            self._clock = self.broker.clock()
        return self._clock

    def current(self) -> datetime:
        out: datetime = self._read().timestamp
        return out

    def can_advance(self) -> bool:
        return bool(self._read().is_open)

    def advance(self) -> None:
        reply = self._http.post(f"{self.url}/admin/advance", json={"bars": 1},
                                timeout=self.timeout_s)  # fmt: skip
        self._clock = None
        if reply.status_code != 200:
            raise BrokerError(
                f"POST {self.url}/admin/advance answered {reply.status_code} {reply.text[:200]}; "
                "expected 200 from a local venue with bars left"
            )


class WallBarClock:
    """Alpaca's clock: the latest closed bar is the newest bar the feed has; ``advance``
    sleeps until the venue's next close plus ``settle_s``, then polls the feed for that bar."""

    replay = False

    def __init__(
        self,
        broker: Any,
        feed: AlpacaBarFeed,
        *,
        settle_s: float = 60.0,
        poll_s: float = 15.0,
        timeout_s: float = 3600.0,
        lookback: timedelta = timedelta(days=10),
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.broker, self.feed = broker, feed
        self.settle_s, self.poll_s, self.timeout_s = settle_s, poll_s, timeout_s
        self.lookback = lookback
        self._sleep = sleep
        self._now = now or (lambda: pd.Timestamp.now(tz="UTC").to_pydatetime())
        self._current: datetime | None = None

    def current(self) -> datetime:
        if self._current is None:
            latest = self.feed.latest(self._now(), self.lookback)
            if latest is None:
                raise NodeDataError(
                    f"no bar in the last {self.lookback} from the data feed; expected a market "
                    "that traded recently"
                )
            self._current = latest.to_pydatetime()
        return self._current

    def can_advance(self) -> bool:
        return True

    def advance(self) -> None:
        before = utc(self.current())
        wake = utc(self.broker.clock().next_close) + pd.Timedelta(seconds=self.settle_s)
        wait = (wake - utc(self._now())).total_seconds()
        if wait > 0:
            self._sleep(wait)
        waited = 0.0
        while True:
            latest = self.feed.latest(self._now(), self.lookback)
            if latest is not None and latest > before:
                self._current = latest.to_pydatetime()
                return
            if waited >= self.timeout_s:
                raise NodeDataError(
                    f"no bar after {before.isoformat()} within {self.timeout_s} s of the close; "
                    "expected the data feed to publish the closed bar"
                )
            self._sleep(self.poll_s)
            waited += self.poll_s


__all__ = ["AlpacaBarFeed", "VenueBarClock", "WallBarClock", "assemble"]
