"""Yahoo Finance through the real yfinance client, its requests session answering from
recorded chart responses."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlparse

import pandas as pd
import pytest

# imported at collection: yfinance installs a 'default' filter for its own deprecation
# warnings on import, which must sit behind the per-test filters below
import yfinance  # noqa: F401
from vendor_fakes import golden, replay_session

from tradeforge.core.errors import SourceError, UnknownSymbolError
from tradeforge.data.sources.yahoo import YahooSource

pytestmark = [
    # yfinance itself still uses pandas' deprecated inplace= arguments
    pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning"),
]


@pytest.fixture(autouse=True)
def _yf_cache(tmp_path) -> None:
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path / "yf-cache"))


def _yahoo(chart_answer):
    def answer(request):
        url = urlparse(request.url)
        if url.netloc == "fc.yahoo.com":
            return 404, "", {}
        if url.path.endswith("/getcrumb"):
            return 200, "crumbXYZ", {"content-type": "text/plain"}
        if "/v8/finance/chart/" in url.path:
            return chart_answer(request)
        if "/quoteSummary/" in url.path:
            return 404, golden("yahoo/quote_summary_not_found.json"), {}
        return 404, {"error": "unexpected"}, {}

    return replay_session(answer)


def _period_requests(adapter) -> list[str]:
    return [r.url for r in adapter.requests if "period1" in r.url]


def test_adjusted_daily_bars_and_trading_dates() -> None:
    session, adapter = _yahoo(lambda r: (200, golden("yahoo/chart_aapl_1d.json"), {}))
    bars = YahooSource(session=session).fetch_bars(
        "AAPL", "1d", date(2020, 8, 27), date(2020, 9, 1)
    )
    url = _period_requests(adapter)[0]
    assert "interval=1d" in url
    assert "events=div%2Csplits" in url
    days = pd.to_datetime(["2020-08-27", "2020-08-28", "2020-08-31", "2020-09-01"], utc=True)
    assert list(bars["timestamp"]) == list(days)
    # auto-adjusted: close is Yahoo's adjusted close, OHLC scaled by the same factor
    assert bars["close"].tolist() == pytest.approx([122.9411, 122.7419, 126.9004, 131.9553])
    factor = 122.9411 / 125.01
    assert bars["open"].iloc[0] == pytest.approx(127.1425 * factor, rel=1e-6)


def test_raw_bars_when_not_adjusted() -> None:
    session, _ = _yahoo(lambda r: (200, golden("yahoo/chart_aapl_1d.json"), {}))
    bars = YahooSource(adjusted=False, session=session).fetch_bars(
        "AAPL", "1d", date(2020, 8, 27), date(2020, 9, 1)
    )
    assert bars["close"].tolist() == pytest.approx([125.01, 124.8075, 129.04, 134.18])


def test_split_in_actions() -> None:
    session, _ = _yahoo(lambda r: (200, golden("yahoo/chart_aapl_1d.json"), {}))
    actions = YahooSource(session=session).fetch_actions("AAPL")
    assert list(actions["kind"]) == ["split"]
    assert actions["value"].iloc[0] == 4.0
    assert actions["ex_date"].iloc[0] == pd.Timestamp("2020-08-31", tz="UTC")


def test_unknown_symbol() -> None:
    session, _ = _yahoo(lambda r: (404, golden("yahoo/chart_not_found.json"), {}))
    with pytest.raises(UnknownSymbolError, match="yfinance: no data for 'NOPE'"):
        YahooSource(session=session).fetch_bars("NOPE", "1d", date(2020, 8, 27), date(2020, 9, 1))


def test_four_hour_bars_are_refused() -> None:
    with pytest.raises(SourceError, match="4h bars are not offered"):
        YahooSource(session=object()).fetch_bars("AAPL", "4h")
