"""Polygon and the shared HTTP client, replayed from recorded answers through httpx.MockTransport."""

from __future__ import annotations

import logging
from datetime import date

import httpx
import numpy as np
import pandas as pd
import pytest
from vendor_fakes import Sleeps, golden, golden_text

from tradeforge.core.errors import SourceError
from tradeforge.data.sources.http import HttpJsonClient, retry_delay
from tradeforge.data.sources.keys import install_log_redaction
from tradeforge.data.sources.polygon import PolygonSource

KEY = "pk_test_9f8e7d6c5b4a"


def _json(payload: object, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=payload, headers=headers)


def _source(handler, sleeps: Sleeps, **options) -> PolygonSource:
    return PolygonSource(
        api_key=KEY, transport=httpx.MockTransport(handler), sleep=sleeps, **options
    )


def test_aggregates_follow_next_url_and_keep_trading_dates(sleeps: Sleeps) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "cursor=" in str(request.url):
            return _json(golden("polygon/aggs_aapl_page2.json"))
        return _json(golden("polygon/aggs_aapl_page1.json"))

    bars = _source(handler, sleeps).fetch_bars("AAPL", "1d", date(2023, 1, 9), date(2023, 1, 13))

    assert len(seen) == 2
    first = seen[0]
    assert first.url.path == "/v2/aggs/ticker/AAPL/range/1/day/2023-01-09/2023-01-13"
    assert first.url.params["adjusted"] == "true"
    assert first.headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in str(first.url)  # the key travels in the header only
    assert "cursor" in seen[1].url.params
    expected_days = pd.date_range("2023-01-09", periods=5, freq="D", tz="UTC")
    assert list(bars["timestamp"]) == list(expected_days)
    assert bars["open"].iloc[0] == pytest.approx(130.465)
    assert bars["close"].iloc[-1] == pytest.approx(134.76)
    assert bars["volume"].iloc[1] == pytest.approx(63896155)
    assert bars["vwap"].iloc[0] == pytest.approx(131.6292)
    assert bars["trades"].iloc[4] == 535299
    assert bars["timestamp"].dt.tz is not None


def test_unknown_ticker_gives_empty_frame(sleeps: Sleeps) -> None:
    src = _source(lambda r: _json(golden("polygon/aggs_empty.json")), sleeps)
    assert src.fetch_bars("NOSUCH", "1d", date(2023, 1, 9), date(2023, 1, 13)).empty


def test_429_waits_as_long_as_retry_after_then_succeeds(sleeps: Sleeps) -> None:
    answers = [
        _json(golden("polygon/error_rate_limit.json"), 429, **{"Retry-After": "7"}),
        _json(golden("polygon/error_rate_limit.json"), 429),
        _json(golden("polygon/aggs_aapl_page2.json")),
    ]
    src = _source(lambda r: answers.pop(0), sleeps, backoff_s=0.5)
    bars = src.fetch_bars("AAPL", "1d", date(2023, 1, 12), date(2023, 1, 13))
    assert len(bars) == 2
    assert sleeps.waits == [7.0, 1.0]  # Retry-After honoured, then backoff 0.5 * 2**1
    assert src.client.calls == 3


def test_429_retries_are_bounded(sleeps: Sleeps) -> None:
    src = _source(
        lambda r: _json(golden("polygon/error_rate_limit.json"), 429, **{"Retry-After": "1"}),
        sleeps,
        max_retries=2,
    )
    with pytest.raises(SourceError, match=r"rate-limited after 3 attempts \(HTTP 429\)"):
        src.fetch_bars("AAPL", "1d", date(2023, 1, 9), date(2023, 1, 13))
    assert sleeps.waits == [1.0, 1.0]
    assert src.client.calls == 3


def test_not_authorized_payload_names_the_key_variable(sleeps: Sleeps) -> None:
    src = _source(lambda r: _json(golden("polygon/error_not_authorized.json"), 403), sleeps)
    with pytest.raises(SourceError) as info:
        src.fetch_bars("AAPL", "1m", date(2023, 1, 9), date(2023, 1, 9))
    message = str(info.value)
    assert "HTTP 403" in message
    assert "$POLYGON_API_KEY" in message
    assert KEY not in message
    assert sleeps.waits == []  # auth errors are not retried


def test_status_error_in_a_200_answer_is_an_error(sleeps: Sleeps) -> None:
    src = _source(lambda r: _json(golden("polygon/error_unknown_key.json")), sleeps)
    with pytest.raises(SourceError, match=r"polygon: ERROR .*Unknown API Key"):
        src.fetch_bars("AAPL", "1d", date(2023, 1, 9), date(2023, 1, 13))


def test_html_error_page_after_retries_is_reported_as_such(sleeps: Sleeps) -> None:
    page = golden_text("polygon/cloudflare_502.html")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text=page, headers={"content-type": "text/html"})

    src = _source(handler, sleeps, max_retries=1)
    with pytest.raises(SourceError, match="HTTP 502") as info:
        src.fetch_bars("AAPL", "1d", date(2023, 1, 9), date(2023, 1, 13))
    assert len(sleeps.waits) == 1
    assert "\n" not in str(info.value)


def test_html_page_with_status_200_is_not_parsed_as_json(sleeps: Sleeps) -> None:
    page = golden_text("polygon/cloudflare_502.html")
    src = _source(lambda r: httpx.Response(200, text=page), sleeps)
    with pytest.raises(SourceError, match="HTML page instead of JSON"):
        src.fetch_bars("AAPL", "1d", date(2023, 1, 9), date(2023, 1, 13))


def test_network_errors_are_retried_then_reported(sleeps: Sleeps) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    src = _source(handler, sleeps, max_retries=2, backoff_s=0.25)
    with pytest.raises(SourceError, match="network error after 3 attempts"):
        src.fetch_bars("AAPL", "1d", date(2023, 1, 9), date(2023, 1, 13))
    assert sleeps.waits == [0.25, 0.5]


def test_missing_key_names_env_var_and_fix(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    with pytest.raises(SourceError, match=r"\$POLYGON_API_KEY.*export POLYGON_API_KEY"):
        PolygonSource()


def test_key_from_dotenv_is_used_and_never_logged(
    monkeypatch: pytest.MonkeyPatch, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"POLYGON_API_KEY={KEY}\n", encoding="utf-8")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return _json(golden("polygon/aggs_aapl_page2.json"))

    install_log_redaction()
    src = PolygonSource(transport=httpx.MockTransport(handler))
    with caplog.at_level(logging.DEBUG, logger="tradeforge"):
        logging.getLogger("tradeforge.data.test").info("using key %s", KEY)
        src.fetch_bars("AAPL", "1d", date(2023, 1, 12), date(2023, 1, 13))
    assert seen == [f"Bearer {KEY}"]
    assert "POLYGON_API_KEY" not in __import__("os").environ
    assert KEY not in caplog.text
    assert "***" in caplog.text


def test_splits_and_paged_dividends(sleeps: Sleeps) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v3/reference/splits":
            assert request.url.params["ticker"] == "AAPL"
            return _json(golden("polygon/splits_aapl.json"))
        if "cursor" in request.url.params:
            return _json(golden("polygon/dividends_aapl_page2.json"))
        return _json(golden("polygon/dividends_aapl_page1.json"))

    actions = _source(handler, sleeps).fetch_actions("AAPL")
    assert list(actions["kind"]) == ["split", "split", "dividend", "dividend"]
    assert list(actions["value"]) == pytest.approx([7.0, 4.0, 0.23, 0.24])
    assert actions["ex_date"].iloc[1] == pd.Timestamp("2020-08-31", tz="UTC")
    assert actions["ex_date"].is_monotonic_increasing


def test_fundamentals_are_stamped_by_filing_date(sleeps: Sleeps) -> None:
    from tradeforge.data.corporate import fundamentals_asof

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/vX/reference/financials"
        return _json(golden("polygon/financials_aapl.json"))

    funds = _source(handler, sleeps).fetch_fundamentals("AAPL")
    # the Q3 filing has no filing date: dropped, never guessed
    assert set(funds["fiscal_period"]) == {"Q1", "Q2"}
    assert set(funds["published"]) == {
        pd.Timestamp("2023-02-03", tz="UTC"),
        pd.Timestamp("2023-05-05", tz="UTC"),
    }
    # point in time: the day before Q2's filing still sees Q1 figures
    before = fundamentals_asof(funds, "2023-05-04")
    assert before["income_statement.revenues"] == 117154000000
    after = fundamentals_asof(funds, "2023-05-05")
    assert after["income_statement.revenues"] == 94836000000
    assert after["income_statement.basic_earnings_per_share"] == pytest.approx(1.53)
    assert fundamentals_asof(funds, "2023-01-01").empty


def test_retry_delay_parses_http_dates_and_caps_waits() -> None:
    assert retry_delay(0, None, 1.0, 60.0) == 1.0
    assert retry_delay(3, None, 1.0, 60.0) == 8.0
    assert retry_delay(10, None, 1.0, 60.0) == 60.0
    assert retry_delay(0, "120", 1.0, 30.0) == 30.0
    assert retry_delay(0, "Wed, 21 Oct 2015 07:28:00 GMT", 1.0, 30.0) == 0.0  # in the past
    assert retry_delay(2, "soon", 1.0, 30.0) == 4.0  # unparsable: backoff


def test_invalid_json_is_one_line_error(sleeps: Sleeps) -> None:
    client = HttpJsonClient(
        "polygon",
        "https://api.polygon.io",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, text="{not json")),
        sleep=sleeps,
    )
    with pytest.raises(SourceError, match="not valid JSON"):
        client.get_json("/v2/x")
    assert np.isfinite(client.calls)
