"""Alpaca through the real alpaca-py SDK, its HTTP session answering from recorded responses."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
from vendor_fakes import Sleeps, golden, golden_text, replay_session

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.sources.alpaca import AlpacaSource

KEY, SECRET = "PKTEST1234567890ABCD", "sEcReT0987654321zyxwvutsrqponml"


def _query(request) -> dict[str, list[str]]:
    return parse_qs(urlparse(request.url).query)


def _stock_source(answer, sleeps: Sleeps, **options) -> tuple[AlpacaSource, object]:
    session, adapter = replay_session(answer)
    src = AlpacaSource(api_key=KEY, secret_key=SECRET, session=session, sleep=sleeps, **options)
    return src, adapter


def test_stock_bars_follow_next_page_token(sleeps: Sleeps) -> None:
    def answer(request):
        if _query(request).get("page_token"):
            return 200, golden("alpaca/stock_bars_aapl_page2.json"), {}
        return 200, golden("alpaca/stock_bars_aapl_page1.json"), {}

    src, adapter = _stock_source(answer, sleeps)
    bars = src.fetch_bars("AAPL", "1d", date(2023, 1, 9), date(2023, 1, 13))
    first, second = adapter.requests
    assert urlparse(first.url).path == "/v2/stocks/bars"
    q = _query(first)
    assert q["symbols"] == ["AAPL"]
    assert q["timeframe"] == ["1Day"]
    assert q["adjustment"] == ["all"]
    assert first.headers["APCA-API-KEY-ID"] == KEY
    assert _query(second)["page_token"] == ["QUFQTHxEfDIwMjMtMDEtMTFUMDU6MDA6MDAuMDAwMDAwMDAwWg=="]
    # daily bars stamped at New York midnight keep their trading date
    assert list(bars["timestamp"]) == list(pd.date_range("2023-01-09", periods=5, tz="UTC"))
    assert bars["close"].tolist() == pytest.approx([130.15, 130.73, 133.49, 133.41, 134.76])
    assert bars["vwap"].iloc[0] == pytest.approx(131.6292)
    assert bars["trades"].iloc[-1] == 535299


def test_crypto_bars_need_no_key(monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps) -> None:
    for var in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    session, adapter = replay_session(lambda r: (200, golden("alpaca/crypto_bars_btc_1h.json"), {}))
    src = AlpacaSource(asset_class="crypto", session=session, sleep=sleeps)
    bars = src.fetch_bars("BTC/USD", "1h", date(2024, 1, 2), date(2024, 1, 2))
    request = adapter.requests[0]
    assert urlparse(request.url).path == "/v1beta3/crypto/us/bars"
    assert _query(request)["timeframe"] == ["1Hour"]
    assert "APCA-API-KEY-ID" not in request.headers
    assert bars["timestamp"].iloc[2] == pd.Timestamp("2024-01-02 03:00", tz="UTC")  # gap kept
    assert bars["volume"].iloc[0] == pytest.approx(3.6120448)


def test_429_honours_retry_after_then_succeeds(sleeps: Sleeps) -> None:
    answers = [
        (429, golden("alpaca/error_rate_limit.json"), {"Retry-After": "5"}),
        (200, golden("alpaca/stock_bars_aapl_page2.json"), {}),
    ]
    src, adapter = _stock_source(lambda r: answers.pop(0), sleeps)
    bars = src.fetch_bars("AAPL", "1d", date(2023, 1, 12), date(2023, 1, 13))
    assert len(bars) == 2
    assert sleeps.waits == [5.0]
    assert len(adapter.requests) == 2


def test_429_retries_are_bounded(sleeps: Sleeps) -> None:
    src, adapter = _stock_source(
        lambda r: (429, golden("alpaca/error_rate_limit.json"), {}), sleeps, max_retries=2
    )
    with pytest.raises(SourceError, match=r"still rate-limited \(HTTP 429\) after 2 retries"):
        src.fetch_bars("AAPL", "1d", date(2023, 1, 9), date(2023, 1, 13))
    assert sleeps.waits == [1.0, 2.0]
    assert len(adapter.requests) == 3


def test_forbidden_names_the_key_variables_without_the_keys(sleeps: Sleeps) -> None:
    src, _ = _stock_source(lambda r: (403, golden("alpaca/error_forbidden.json"), {}), sleeps)
    with pytest.raises(SourceError, match=r"HTTP 403.*\$ALPACA_API_KEY") as info:
        src.fetch_bars("AAPL", "1d", date(2023, 1, 9), date(2023, 1, 13))
    assert KEY not in str(info.value)
    assert SECRET not in str(info.value)
    assert sleeps.waits == []


def test_invalid_symbol_payload(sleeps: Sleeps) -> None:
    src, _ = _stock_source(lambda r: (422, golden("alpaca/error_invalid_symbol.json"), {}), sleeps)
    with pytest.raises(UnknownSymbolError, match="unknown symbol 'AAPL!'"):
        src.fetch_bars("AAPL!", "1d", date(2023, 1, 9), date(2023, 1, 13))


def test_html_error_page(sleeps: Sleeps) -> None:
    page = golden_text("polygon/cloudflare_502.html")
    src, adapter = _stock_source(lambda r: (502, page, {}), sleeps, max_retries=1)
    with pytest.raises(SourceError, match="HTML error page \\(HTTP 502\\)"):
        src.fetch_bars("AAPL", "1d", date(2023, 1, 9), date(2023, 1, 13))
    assert len(adapter.requests) == 2


def test_keys_from_environment(monkeypatch: pytest.MonkeyPatch, sleeps: Sleeps) -> None:
    monkeypatch.delenv("ALPACA_API_KEY", raising=False)
    monkeypatch.delenv("ALPACA_SECRET_KEY", raising=False)
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    session, adapter = replay_session(
        lambda r: (200, golden("alpaca/stock_bars_aapl_page2.json"), {})
    )
    AlpacaSource(session=session, sleep=sleeps).fetch_bars("AAPL", "1d", date(2023, 1, 12))
    assert adapter.requests[0].headers["APCA-API-SECRET-KEY"] == SECRET


def test_missing_keys(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for var in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceError, match=r"\$ALPACA_API_KEY, which is not set"):
        AlpacaSource()
