"""News sources (recorded JSON via httpx.MockTransport), the lexicon scorer and as-of aggregation."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge.core.errors import SourceError
from tradeforge.data.panel import BarPanel
from tradeforge.features import (
    AlpacaNewsSource,
    FeaturePipeline,
    FeatureSpec,
    LexiconScorer,
    NewsItem,
    PolygonNewsSource,
    aggregate_news,
    attach_news,
)
from tradeforge.features.sentiment import decision_times, fetch_and_attach

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "features"


def _recorded(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((FIXTURES / name).read_text())
    return data


def _panel(equities_panel: BarPanel) -> BarPanel:
    return equities_panel.slice_time("2012-12-20", "2013-01-10")


def test_lexicon_scorer() -> None:
    scorer = LexiconScorer()
    assert scorer.score("Apple shares surge after record iPhone sales beat estimates") == 1.0
    assert scorer.score("IBM falls as analysts downgrade services unit") == -1.0
    assert scorer.score("Quarterly report released on Tuesday") == 0.0
    assert scorer.score("Strong sales but a weak outlook and losses") == pytest.approx(-1 / 3)
    # negation within three words flips the term
    assert scorer.score("Microsoft not expected to cut dividend") == 1.0
    assert scorer.score("No growth this year") == -1.0


def test_alpaca_news_pages_and_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        page = (
            "alpaca_news_page2.json"
            if "page_token" in request.url.params
            else "alpaca_news_page1.json"
        )
        return httpx.Response(200, json=_recorded(page))

    source = AlpacaNewsSource("key-id-123", "secret-456", transport=httpx.MockTransport(handler))
    items = source.fetch_news(["AAPL", "IBM", "MSFT"], "2013-01-01", "2013-01-05")
    assert [i.headline[:9] for i in items] == ["Apple sha", "IBM falls", "Microsoft"]
    assert items[0].published == pd.Timestamp("2013-01-02T14:05:00Z")
    assert items[2].symbols == ("MSFT", "AAPL")
    assert items[0].source == "benzinga"
    assert len(seen) == 2
    first = seen[0]
    assert first.url.path == "/v1beta1/news"
    assert first.url.params["symbols"] == "AAPL,IBM,MSFT"
    assert first.url.params["start"] == "2013-01-01T00:00:00Z"
    assert first.headers["APCA-API-KEY-ID"] == "key-id-123"
    assert seen[1].url.params["page_token"] == "MTM1NzE0MzQwMDAwMDAwMDAwMHwyNDg0MzM4OA=="


def test_polygon_news_follows_next_url_and_keeps_the_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.params.get("ticker") == "IBM":
            return httpx.Response(200, json=_recorded("polygon_news_ibm.json"))
        if "cursor" in request.url.params:
            return httpx.Response(200, json=_recorded("polygon_news_aapl_page2.json"))
        return httpx.Response(200, json=_recorded("polygon_news_aapl_page1.json"))

    source = PolygonNewsSource("pk-789", transport=httpx.MockTransport(handler))
    items = source.fetch_news(["AAPL", "IBM"], "2013-01-01", "2013-01-05")
    assert [i.symbols for i in items] == [("AAPL",), ("IBM",), ("AAPL",)]
    assert items[0].source == "The Motley Fool"
    assert items[0].summary.startswith("Apple reported")
    assert all(r.url.params["apiKey"] == "pk-789" for r in seen)
    assert seen[0].url.params["published_utc.gte"] == "2013-01-01T00:00:00Z"
    assert len(seen) == 3


def test_news_source_errors_do_not_leak_the_key() -> None:
    def unauthorized(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"message": "forbidden"})

    source = PolygonNewsSource("pk-secret-789", transport=httpx.MockTransport(unauthorized))
    with pytest.raises(SourceError) as err:
        source.fetch_news(["AAPL"], "2013-01-01", "2013-01-05")
    assert "HTTP 403" in str(err.value)
    assert "pk-secret-789" not in str(err.value)

    def bad_shape(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": []})

    alpaca = AlpacaNewsSource("k", "s", transport=httpx.MockTransport(bad_shape))
    with pytest.raises(SourceError, match="no 'news' list"):
        alpaca.fetch_news(["AAPL"], "2013-01-01", "2013-01-05")


def test_news_after_the_close_goes_to_the_next_bar(equities_panel: BarPanel) -> None:
    panel = _panel(equities_panel)
    closes = decision_times(panel.index, panel.frequency)
    day = panel.index.get_loc(pd.Timestamp("2013-01-02", tz="UTC"))
    assert closes[day] == pd.Timestamp("2013-01-02T21:00:00Z")  # 16:00 New York (EST)
    items = [
        NewsItem(pd.Timestamp("2013-01-02T14:05:00Z"), ("AAPL",), "Apple shares surge"),
        NewsItem(
            pd.Timestamp("2013-01-02T21:00:00Z"), ("AAPL",), "Apple profit beats"
        ),  # at the close
        NewsItem(pd.Timestamp("2013-01-02T22:30:00Z"), ("IBM",), "IBM falls"),  # after the close
        NewsItem(pd.Timestamp("2013-01-05T12:00:00Z"), ("MSFT",), "Microsoft plunges"),  # Saturday
        NewsItem(pd.Timestamp("2013-01-02T15:00:00Z"), ("TSLA",), "Not in the panel surges"),
    ]
    score, count = aggregate_news(panel, items)
    aapl, ibm, msft = 0, 1, 2
    assert count[day, aapl] == 2
    assert score[day, aapl] == 2.0
    assert count[day, ibm] == 0
    assert count[day + 1, ibm] == 1
    assert score[day + 1, ibm] == -1.0
    monday = panel.index.get_loc(pd.Timestamp("2013-01-07", tz="UTC"))
    assert count[monday, msft] == 1
    assert score[monday, msft] == -1.0
    assert count.sum() == 4


def test_sentiment_features_from_recorded_news(equities_panel: BarPanel) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = (
            "alpaca_news_page2.json"
            if "page_token" in request.url.params
            else "alpaca_news_page1.json"
        )
        return httpx.Response(200, json=_recorded(page))

    source = AlpacaNewsSource("k", "s", transport=httpx.MockTransport(handler))
    panel = fetch_and_attach(_panel(equities_panel), source)
    spec = FeatureSpec.from_names(
        ["news_sentiment_1", "news_sentiment_3", "news_count_3"], scaler="none"
    )
    fp = FeaturePipeline(spec).transform(panel)
    day = panel.index.get_loc(pd.Timestamp("2013-01-02", tz="UTC"))
    sent1, sent3 = fp.feature("news_sentiment_1"), fp.feature("news_sentiment_3")
    assert sent1[day, 0] == 1.0
    assert sent1[day, 1] == 0.0
    assert sent1[day + 1, 1] == -1.0
    # Jan 3: "Microsoft and Apple not expected to cut dividend" -> +1 for both
    assert sent1[day + 1, 2] == 1.0
    assert sent1[day + 1, 0] == 1.0
    assert sent3[day + 1, 0] == 1.0
    assert fp.feature("news_count_3")[day + 1, 0] == 2.0
    assert np.isnan(sent3[:2]).all()  # warm-up of the 3-bar window


@settings(max_examples=30, deadline=None)
@given(
    cut=st.integers(min_value=0, max_value=12),
    hours=st.lists(st.floats(min_value=0, max_value=400), min_size=1, max_size=25),
)
def test_aggregation_never_uses_news_published_after_the_decision_time(
    cut: int, hours: list[float]
) -> None:
    idx = pd.date_range("2013-01-02", periods=15, freq="B", tz="UTC")
    arr = np.full((15, 1), 100.0)
    panel = BarPanel(idx, ("AAPL",), arr, arr, arr, arr, arr)
    start = pd.Timestamp("2013-01-01T00:00:00Z")
    items = [NewsItem(start + pd.Timedelta(hours=h), ("AAPL",), "shares surge") for h in hours]
    close_cut = decision_times(idx, "1d")[cut]
    known = [i for i in items if i.published <= close_cut]
    s_all, c_all = aggregate_news(panel, items)
    s_known, c_known = aggregate_news(panel, known)
    np.testing.assert_array_equal(c_all[: cut + 1], c_known[: cut + 1])
    np.testing.assert_array_equal(s_all[: cut + 1], s_known[: cut + 1])


def test_attach_news_keeps_holes_nan(equities_panel: BarPanel) -> None:
    panel = _panel(equities_panel)
    close = panel.close.copy()
    close[3, 1] = np.nan
    from dataclasses import replace

    holed = replace(panel, close=close)
    item = NewsItem(
        decision_times(panel.index, "1d")[2] + pd.Timedelta(hours=1), ("IBM",), "IBM beats"
    )
    out = attach_news(holed, [item])
    assert np.isnan(out.extra["news_count"][3, 1])
    assert out.extra["news_count"][4, 1] == 1.0  # waits for IBM's next bar
    assert out.extra["news_count"][3, 0] == 0.0
