"""Alpha Vantage replayed from recorded answers through httpx.MockTransport."""

from __future__ import annotations

import logging
from datetime import date

import httpx
import numpy as np
import pandas as pd
import pytest
from vendor_fakes import Sleeps, golden

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.sources.alphavantage import AlphaVantageSource
from tradeforge.data.sources.keys import install_log_redaction

KEY = "AVTESTKEY12345"


def _source(handler, sleeps: Sleeps, **options) -> AlphaVantageSource:
    return AlphaVantageSource(
        api_key=KEY, transport=httpx.MockTransport(handler), sleep=sleeps, **options
    )


def _by_function(mapping: dict[str, str], calls: list[httpx.Request] | None = None):
    def handler(request: httpx.Request) -> httpx.Response:
        if calls is not None:
            calls.append(request)
        return httpx.Response(200, json=golden(mapping[request.url.params["function"]]))

    return handler


def test_daily_adjusted_bars_are_scaled_by_adjusted_close(sleeps: Sleeps) -> None:
    calls: list[httpx.Request] = []
    handler = _by_function(
        {"TIME_SERIES_DAILY_ADJUSTED": "alphavantage/daily_adjusted_ibm.json"}, calls
    )
    bars = _source(handler, sleeps).fetch_bars("IBM", "1d")
    assert calls[0].url.params["symbol"] == "IBM"
    assert calls[0].url.params["outputsize"] == "full"
    assert calls[0].url.params["apikey"] == KEY
    days = pd.to_datetime(["2023-11-07", "2023-11-08", "2023-11-09", "2023-11-10"], utc=True)
    assert list(bars["timestamp"]) == list(days)  # sorted ascending, trading dates
    factor = 147.30 / 148.97
    assert bars["close"].iloc[0] == pytest.approx(147.30)
    assert bars["open"].iloc[0] == pytest.approx(148.18 * factor)
    assert bars["high"].iloc[0] == pytest.approx(149.27 * factor)
    assert bars["volume"].iloc[0] == pytest.approx(3651278 / factor)
    assert bars["close"].iloc[-1] == pytest.approx(149.02)  # after the ex-date: factor 1


def test_raw_bars_when_not_adjusted_and_window_cut(sleeps: Sleeps) -> None:
    # the free endpoint (TIME_SERIES_DAILY) has the same shape minus the adjusted fields
    handler = _by_function({"TIME_SERIES_DAILY": "alphavantage/daily_adjusted_ibm.json"})
    src = _source(handler, sleeps, adjusted=False)
    bars = src.fetch_bars("IBM", "1d", date(2023, 11, 8), date(2023, 11, 9))
    assert list(bars["close"]) == pytest.approx([148.03, 146.62])


def test_split_shows_in_actions_not_in_adjusted_prices(sleeps: Sleeps) -> None:
    handler = _by_function(
        {"TIME_SERIES_DAILY_ADJUSTED": "alphavantage/daily_adjusted_aapl_split.json"}
    )
    src = _source(handler, sleeps)
    bars = src.fetch_bars("AAPL", "1d")
    returns = np.diff(np.log(bars["close"].to_numpy()))
    assert np.abs(returns).max() < 0.05  # the 4:1 split is not a -75% day
    actions = src.fetch_actions("AAPL")
    assert list(actions["kind"]) == ["split"]
    assert actions["value"].iloc[0] == 4.0
    assert actions["ex_date"].iloc[0] == pd.Timestamp("2020-08-31", tz="UTC")


def test_dividends_from_the_adjusted_series(sleeps: Sleeps) -> None:
    handler = _by_function({"TIME_SERIES_DAILY_ADJUSTED": "alphavantage/daily_adjusted_ibm.json"})
    actions = _source(handler, sleeps).fetch_actions("IBM")
    assert list(actions["kind"]) == ["dividend"]
    assert actions["value"].iloc[0] == pytest.approx(1.66)
    assert actions["ex_date"].iloc[0] == pd.Timestamp("2023-11-09", tz="UTC")


def test_intraday_bars_move_to_interval_start_in_utc(sleeps: Sleeps) -> None:
    calls: list[httpx.Request] = []
    handler = _by_function({"TIME_SERIES_INTRADAY": "alphavantage/intraday_5min_ibm.json"}, calls)
    bars = _source(handler, sleeps).fetch_bars("IBM", "5m")
    assert calls[0].url.params["interval"] == "5min"
    # 09:35 US/Eastern (EST, UTC-5) stamps the bar that ended then: it started 14:30 UTC
    assert bars["timestamp"].iloc[0] == pd.Timestamp("2023-11-10 14:30", tz="UTC")
    assert bars["timestamp"].iloc[-1] == pd.Timestamp("2023-11-10 14:40", tz="UTC")
    assert bars["close"].iloc[-1] == pytest.approx(147.29)


def test_rate_limit_note_is_retried_with_backoff(sleeps: Sleeps) -> None:
    answers = ["alphavantage/rate_limit_note.json", "alphavantage/daily_adjusted_ibm.json"]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=golden(answers.pop(0)))

    bars = _source(handler, sleeps, backoff_s=2.0).fetch_bars("IBM", "1d")
    assert len(bars) == 4
    assert sleeps.waits == [2.0]


def test_rate_limit_note_retries_are_bounded(sleeps: Sleeps) -> None:
    handler = _by_function({"TIME_SERIES_DAILY_ADJUSTED": "alphavantage/rate_limit_note.json"})
    src = _source(handler, sleeps, rate_limit_retries=2)
    with pytest.raises(SourceError, match="call frequency") as info:
        src.fetch_bars("IBM", "1d")
    assert len(sleeps.waits) == 2
    assert KEY not in str(info.value)


def test_premium_information_is_not_retried(sleeps: Sleeps) -> None:
    handler = _by_function({"TIME_SERIES_DAILY_ADJUSTED": "alphavantage/premium_information.json"})
    with pytest.raises(SourceError, match="premium endpoint"):
        _source(handler, sleeps).fetch_bars("IBM", "1d")
    assert sleeps.waits == []


def test_error_message_payload_is_unknown_symbol(sleeps: Sleeps) -> None:
    handler = _by_function({"TIME_SERIES_DAILY_ADJUSTED": "alphavantage/error_invalid_symbol.json"})
    with pytest.raises(UnknownSymbolError, match=r"'NOPE'.*check the symbol"):
        _source(handler, sleeps).fetch_bars("NOPE", "1d")


def test_http_429_with_retry_after(sleeps: Sleeps) -> None:
    answers = [
        httpx.Response(429, text="", headers={"Retry-After": "3"}),
        httpx.Response(200, json=golden("alphavantage/daily_adjusted_ibm.json")),
    ]
    bars = _source(lambda r: answers.pop(0), sleeps).fetch_bars("IBM", "1d")
    assert len(bars) == 4
    assert sleeps.waits == [3.0]


def test_earnings_are_point_in_time_by_report_date(sleeps: Sleeps) -> None:
    from tradeforge.data.corporate import fundamentals_asof

    handler = _by_function({"EARNINGS": "alphavantage/earnings_ibm.json"})
    funds = _source(handler, sleeps).fetch_fundamentals("IBM")
    eps = funds[funds["item"] == "earnings.reportedEPS"]
    assert len(eps) == 4
    # the 'None' estimate of the Q4 2022 report is skipped, not turned into a number
    assert len(funds[funds["item"] == "earnings.estimatedEPS"]) == 3
    q3 = eps[eps["period_end"] == pd.Timestamp("2023-09-30", tz="UTC")]
    assert q3["published"].iloc[0] == pd.Timestamp("2023-10-25", tz="UTC")
    # on 2023-10-24 the Q3 report (period ended 09-30) was not public yet
    assert fundamentals_asof(funds, "2023-10-24")["earnings.reportedEPS"] == pytest.approx(2.18)
    assert fundamentals_asof(funds, "2023-10-25")["earnings.reportedEPS"] == pytest.approx(2.2)


def test_key_in_query_never_reaches_logs(sleeps: Sleeps, caplog: pytest.LogCaptureFixture) -> None:
    handler = _by_function({"TIME_SERIES_DAILY_ADJUSTED": "alphavantage/daily_adjusted_ibm.json"})
    install_log_redaction()
    with caplog.at_level(logging.INFO):
        _source(handler, sleeps).fetch_bars("IBM", "1d")
    assert "alphavantage.co/query" in caplog.text  # httpx logged the request URL ...
    assert KEY not in caplog.text  # ... with the key masked


def test_missing_key(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("ALPHAVANTAGE_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceError, match=r"\$ALPHAVANTAGE_API_KEY"):
        AlphaVantageSource()


def test_unsupported_frequency(sleeps: Sleeps) -> None:
    src = _source(lambda r: httpx.Response(500), sleeps)
    with pytest.raises(SourceError, match="'4h' is not offered"):
        src.fetch_bars("IBM", "4h")
