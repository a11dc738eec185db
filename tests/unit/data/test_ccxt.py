"""ccxt (binance) with its requests session answering from recorded exchange responses."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
from vendor_fakes import Sleeps, golden, replay_session

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.sources.ccxt_source import CcxtSource

pytest.importorskip("ccxt", reason="ccxt comes with the 'crypto' extra")

K0 = 1704067200000  # 2024-01-01 00:00 UTC
HOUR = 3_600_000


def _binance(klines_answer):
    import ccxt

    def answer(request):
        url = urlparse(request.url)
        if url.path == "/api/v3/exchangeInfo":
            return 200, golden("ccxt/binance_exchange_info.json"), {}
        if url.path == "/api/v3/klines":
            return klines_answer(parse_qs(url.query))
        return 404, {"code": -1, "msg": "unexpected"}, {}

    exchange = ccxt.binance({"enableRateLimit": False, "options": {"fetchMarkets": ["spot"]}})
    session, adapter = replay_session(answer)
    exchange.session = session
    return exchange, adapter


def _pages(query):
    start = int(query["startTime"][0])
    if start <= K0:
        return 200, golden("ccxt/binance_klines_page1.json"), {}
    if start <= K0 + 3 * HOUR:
        return 200, golden("ccxt/binance_klines_page2.json"), {}
    return 200, [], {}


def _source(exchange, sleeps: Sleeps, now: datetime | None = None, **options) -> CcxtSource:
    now = now or datetime(2024, 1, 3, tzinfo=UTC)
    return CcxtSource(exchange=exchange, page_limit=3, sleep=sleeps, now=lambda: now, **options)


def test_candles_are_paged_by_since(sleeps: Sleeps) -> None:
    exchange, adapter = _binance(_pages)
    bars = _source(exchange, sleeps).fetch_bars(
        "BTC/USDT", "1h", date(2024, 1, 1), date(2024, 1, 1)
    )
    starts = [
        int(parse_qs(urlparse(r.url).query)["startTime"][0])
        for r in adapter.requests
        if "klines" in r.url
    ]
    assert starts == [K0, K0 + 3 * HOUR, K0 + 5 * HOUR]
    assert parse_qs(urlparse(adapter.requests[-1].url).query)["symbol"] == ["BTCUSDT"]
    assert list(bars["timestamp"]) == list(
        pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC")
    )
    assert bars["open"].iloc[0] == pytest.approx(42283.58)
    assert bars["close"].iloc[-1] == pytest.approx(42520.01)
    assert bars["volume"].iloc[3] == pytest.approx(777.38617)


def test_forming_candle_is_dropped(sleeps: Sleeps) -> None:
    exchange, _ = _binance(_pages)
    now = datetime(2024, 1, 1, 4, 30, tzinfo=UTC)  # the 04:00 candle is still forming
    bars = _source(exchange, sleeps, now=now).fetch_bars("BTC/USDT", "1h", date(2024, 1, 1))
    assert bars["timestamp"].iloc[-1] == pd.Timestamp("2024-01-01 03:00", tz="UTC")
    assert len(bars) == 4


def test_429_honours_retry_after(sleeps: Sleeps) -> None:
    answers = [(429, golden("ccxt/binance_error_rate_limit.json"), {"Retry-After": "9"})]

    def klines(query):
        return answers.pop(0) if answers else _pages(query)

    exchange, _ = _binance(klines)
    bars = _source(exchange, sleeps).fetch_bars(
        "BTC/USDT", "1h", date(2024, 1, 1), date(2024, 1, 1)
    )
    assert sleeps.waits == [9.0]
    assert len(bars) == 5


def test_rate_limit_retries_are_bounded(sleeps: Sleeps) -> None:
    exchange, _ = _binance(lambda q: (429, golden("ccxt/binance_error_rate_limit.json"), {}))
    src = _source(exchange, sleeps, max_retries=2, backoff_s=0.5)
    with pytest.raises(SourceError, match="after 3 attempts for 'BTC/USDT'; retry later"):
        src.fetch_bars("BTC/USDT", "1h", date(2024, 1, 1), date(2024, 1, 1))
    assert sleeps.waits == [0.5, 1.0]


def test_unknown_symbol(sleeps: Sleeps) -> None:
    exchange, _ = _binance(_pages)
    with pytest.raises(UnknownSymbolError, match="ccxt: unknown symbol 'NOPE/USDT'"):
        _source(exchange, sleeps).fetch_bars("NOPE/USDT", "1h", date(2024, 1, 1))


def test_html_maintenance_page(sleeps: Sleeps) -> None:
    page = "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
    exchange, _ = _binance(lambda q: (503, page, {}))
    with pytest.raises(SourceError, match=r"ccxt: .* for 'BTC/USDT'"):
        _source(exchange, sleeps, max_retries=1).fetch_bars("BTC/USDT", "1h", date(2024, 1, 1))
