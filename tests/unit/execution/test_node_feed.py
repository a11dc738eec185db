"""Bars for the node: the data checks (broker.md cases 19-22), the panel feed, bars assembled
from Alpaca's raw answer, and the feature window (online update equal to batch transform)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_node_support import pipeline

from tradeforge.data.panel import BarPanel
from tradeforge.execution.node_alpaca import AlpacaBarFeed, WallBarClock, assemble
from tradeforge.execution.node_features import FeatureWindow, append_bar
from tradeforge.execution.node_feed import (
    MarketBar,
    NodeDataError,
    PanelFeed,
    bar_problems,
    is_stale,
)
from tradeforge.features.pipeline import FeaturePipeline
from tradeforge.features.spec import FeatureSpec

SYMBOLS = ("AAPL", "IBM")
T = pd.Timestamp("2011-08-16", tz="UTC")


def _bar(**changes: list[float]) -> MarketBar:
    fields = {"open": [10.0, 20.0], "high": [11.0, 21.0], "low": [9.0, 19.0],
              "close": [10.5, 20.5], "volume": [1e6, 2e6]}  # fmt: skip
    fields.update(changes)
    return MarketBar(T, {k: np.asarray(v, dtype=float) for k, v in fields.items()})


def test_a_clean_bar_has_no_problem() -> None:
    assert bar_problems(_bar(), SYMBOLS) == []


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"close": [0.0, 20.5]}, "close = 0.0"),
        ({"open": [-1.0, 20.0]}, "open = -1.0"),
        ({"high": [8.0, 21.0]}, "expected low <= open, close <= high"),
        ({"close": [12.0, 20.5]}, "close 12.0"),
        ({"volume": [float("nan"), 1.0]}, "volume = nan"),
        ({"low": [float("inf"), 19.0]}, "low = inf"),
    ],
)
def test_case_19_bad_values_are_named(changes: dict[str, list[float]], needle: str) -> None:
    problems = bar_problems(_bar(**changes), SYMBOLS)
    assert len(problems) == 1
    assert problems[0].startswith("AAPL")
    assert needle in problems[0]


def test_a_missing_bar_matters_only_for_a_held_symbol() -> None:
    nan = float("nan")
    bar = _bar(open=[nan, 20.0], high=[nan, 21.0], low=[nan, 19.0], close=[nan, 20.5])
    assert bar_problems(bar, SYMBOLS) == []
    assert bar_problems(bar, SYMBOLS, held=["AAPL"]) == [
        f"AAPL at {T.isoformat()}: no bar for a held symbol"
    ]


def test_case_21_stale_bars() -> None:
    day = timedelta(days=1)
    assert is_stale(T, T, None, None) is None
    assert "older than the last close" in (is_stale(T - day, T, None, None) or "")
    now = T + timedelta(hours=2)
    assert is_stale(T, T, now, 3 * 3600.0) is None
    assert "7200 s old; max 3600.0 s" in (is_stale(T, T, now, 3600.0) or "")


def test_panel_feed_serves_up_to_the_asked_bar(equities_panel: BarPanel) -> None:
    feed = PanelFeed(equities_panel)
    history = feed.history(T.to_pydatetime())
    assert history.index[-1] == T
    assert history.n_bars == equities_panel.index.get_loc(T) + 1
    bar = feed.bar(T.to_pydatetime())
    assert bar is not None
    assert list(bar.close) == list(equities_panel.close[history.n_bars - 1])
    assert feed.bar(datetime(2011, 8, 14, tzinfo=UTC)) is None  # a Sunday
    with pytest.raises(NodeDataError, match="starts"):
        feed.history(datetime(1999, 1, 1, tzinfo=UTC))


def _raw(ts: str, c: float, **extra: Any) -> dict[str, Any]:
    return {"t": ts, "o": c, "h": c + 1, "l": c - 1, "c": c, "v": 100.0, **extra}


def test_case_20_and_22_bars_assembled_from_alpaca() -> None:
    raw = {
        "AAPL": [_raw("2011-08-17T00:00:00Z", 2.0, vw=None, n=5), _raw("2011-08-16T00:00:00Z", 1.0, vw=None, n=4)],
        "IBM": [_raw("2011-08-16T00:00:00Z", 5.0), _raw("2011-08-16T00:00:00Z", 5.0)],  # no n, vw
    }  # fmt: skip
    for rows in raw.values():
        for row in rows:
            row.setdefault("vw", None)
    panel = assemble(raw, SYMBOLS, "1d")
    assert panel is not None
    assert list(panel.index) == [T, T + pd.Timedelta(days=1)]  # sorted, duplicate dropped
    assert panel.close[:, 0].tolist() == [1.0, 2.0]
    assert panel.close[0, 1] == 5.0
    assert np.isnan(panel.close[1, 1])
    assert panel.extra == {}  # no vw anywhere: no vwap field
    assert assemble({}, SYMBOLS, "1d") is None
    assert assemble({"AAPL": []}, SYMBOLS, "1d") is None
    with_vw = assemble({"AAPL": [_raw("2011-08-16T00:00:00Z", 1.0, vw=1.1)]}, SYMBOLS, "1d")
    assert with_vw is not None
    assert with_vw.extra["vwap"][0, 0] == 1.1
    clash = {"AAPL": [_raw("2011-08-16T00:00:00Z", 1.0), _raw("2011-08-16T00:00:00Z", 1.5)]}
    with pytest.raises(NodeDataError, match="two different bars"):
        assemble(clash, SYMBOLS, "1d")


class _FakeData:
    """alpaca-py's StockHistoricalDataClient in raw mode, answering from a list."""

    def __init__(self, answers: list[Any]) -> None:
        import requests

        self.answers = answers
        self.requests: list[Any] = []
        self._session = requests.Session()
        self._retry, self._retry_codes = 3, [429, 504]

    def get_stock_bars(self, request: Any) -> Any:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_alpaca_feed_reads_bars_without_sdk_retries() -> None:
    pytest.importorskip("alpaca")
    bar = {"AAPL": [_raw("2011-08-16T00:00:00Z", 1.0, vw=None)], "IBM": []}
    client = _FakeData([ConnectionError("reset"), bar, {}, bar])
    sleeps: list[float] = []
    feed = AlpacaBarFeed(SYMBOLS, "1d", datetime(2000, 1, 1, tzinfo=UTC), api_key="k",
                         secret_key="s", client=client, sleep=sleeps.append)  # fmt: skip
    assert client._retry == 0
    assert client._retry_codes == []
    history = feed.history(T.to_pydatetime())
    assert sleeps == [0.2]
    assert history.close[0, 0] == 1.0
    assert feed.bar(T.to_pydatetime()) is None  # empty answer: no bar yet
    got = feed.bar(T.to_pydatetime())
    assert got is not None
    assert got.close[0] == 1.0
    assert np.isnan(got.close[1])
    request = client.requests[0]
    assert request.start == datetime(2000, 1, 1)  # the SDK keeps UTC as a naive time
    assert request.end == datetime(2011, 8, 16)
    assert str(request.timeframe) == "1Day"
    client.answers = [RuntimeError("down")] * 3
    with pytest.raises(NodeDataError, match="RuntimeError: down"):
        feed.bar(T.to_pydatetime())
    feed.close()


def test_wall_clock_waits_for_the_close_and_its_bar() -> None:
    pytest.importorskip("alpaca")

    class _Clock:
        next_close = T + pd.Timedelta(hours=20)

    class _Broker:
        def clock(self) -> Any:
            return _Clock()

    class _Feed:
        def __init__(self) -> None:
            self.latest_calls = 0

        def latest(self, now: Any, lookback: Any) -> Any:
            self.latest_calls += 1
            return T if self.latest_calls < 4 else T + pd.Timedelta(days=1)

    now = [T + pd.Timedelta(hours=1)]
    sleeps: list[float] = []
    clock = WallBarClock(_Broker(), _Feed(), settle_s=60, poll_s=30, sleep=sleeps.append,  # type: ignore[arg-type]
                         now=lambda: now[0].to_pydatetime())  # fmt: skip
    assert clock.current() == T.to_pydatetime()
    assert clock.can_advance()
    clock.advance()
    assert clock.current() == (T + pd.Timedelta(days=1)).to_pydatetime()
    assert sleeps == [19 * 3600 + 60, 30, 30]


@pytest.mark.parametrize("spec", [FeatureSpec(indicators=["logret_1", "rsi_14"]), None])
def test_online_features_equal_the_batch_transform(
    equities_panel: BarPanel, spec: FeatureSpec | None
) -> None:
    pipe = pipeline(equities_panel) if spec is not None else FeaturePipeline().fit(
        equities_panel, None, "2009-12-31"
    )  # fmt: skip
    first = int(equities_panel.index.get_loc(T))
    online = FeatureWindow(pipe, 5, "update")
    online.start(equities_panel.iloc(slice(0, first)))
    batch = FeatureWindow(pipe, 5, "transform")
    batch.start(equities_panel.iloc(slice(0, first)))
    reference = pipe.transform(equities_panel).values
    for row in range(first, first + 40):
        bar = MarketBar.from_panel(equities_panel, row)
        online.push(bar)
        batch.push(bar)
        assert np.array_equal(online.values(), reference[row - 4 : row + 1], equal_nan=True)
        assert np.array_equal(batch.values(), online.values(), equal_nan=True)
    assert online.ready


def test_append_bar_keeps_time_order(equities_panel: BarPanel) -> None:
    head = equities_panel.iloc(slice(0, 10))
    grown = append_bar(head, MarketBar.from_panel(equities_panel, 10))
    assert grown.n_bars == 11
    assert grown.index[-1] == equities_panel.index[10]
    assert np.array_equal(grown.close, equities_panel.close[:11], equal_nan=True)
    with pytest.raises(NodeDataError, match="not after"):
        append_bar(head, MarketBar.from_panel(equities_panel, 3))
