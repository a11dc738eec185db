"""Regime labels (causal), regime tables with bundled VIX, and cost sensitivity through the engine."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tradeforge.backtest import (
    WalkForwardConfig,
    baseline_weights,
    compute_metrics,
    cost_sensitivity,
    cost_sensitivity_from,
    fold_test_window,
    load_vix,
    make_folds,
    market_returns,
    regime_labels,
    regime_table,
    run_backtest,
)
from tradeforge.backtest.regimes import drawdown_regimes, vix_regimes, volatility_regimes
from tradeforge.core.errors import BacktestError
from tradeforge.sim import CostConfig, SimConfig


@pytest.fixture(scope="module")
def market(sp500_panel: Any) -> pd.Series:
    return market_returns(sp500_panel)


def test_market_returns_are_close_to_close(sp500_panel: Any, market: pd.Series) -> None:
    close = sp500_panel.close[:, 0]
    np.testing.assert_allclose(market.to_numpy(), close[1:] / close[:-1] - 1.0)
    assert market.index[0] == sp500_panel.index[1]


def test_labels_at_t_use_only_data_up_to_t(market: pd.Series) -> None:
    """Truncating the market (and VIX) after bar t must not change any label at or before t."""
    vix = load_vix()
    assert vix is not None
    full_index = pd.DatetimeIndex(market.index[market.index >= "2015-01-01"])
    full = regime_labels(full_index, market, vix)
    assert set(full) == {"volatility", "drawdown", "vix"}
    for cut in ("2016-02-10", "2017-06-30"):
        past_market = market[market.index <= cut]
        past_vix = vix[vix.index <= cut]
        idx = pd.DatetimeIndex(full_index[full_index <= cut])
        part = regime_labels(idx, past_market, past_vix, min_vix_coverage=0.0)
        for kind in ("volatility", "drawdown", "vix"):
            pd.testing.assert_series_equal(
                part[kind], full[kind].loc[idx], check_names=False, obj=kind
            )
    # the whole-sample (ex-post) cut points DO move with later data, which is why causal is default
    ex_post_full = volatility_regimes(market, 21, full_index, causal=False)
    ex_post_cut = volatility_regimes(
        market[market.index <= "2016-02-10"],
        21,
        pd.DatetimeIndex(full_index[full_index <= "2016-02-10"]),
        causal=False,
    )
    assert not ex_post_cut.equals(ex_post_full.loc[ex_post_cut.index])


def test_volatility_label_matches_a_manual_expanding_tercile(market: pd.Series) -> None:
    labels = volatility_regimes(market, 21, min_history=126)
    vol = market.rolling(21).std(ddof=1).shift(1)
    for pos in (200, 1500, 4000):
        history = vol.iloc[: pos + 1].dropna().to_numpy()
        lo, hi = np.quantile(history, [1 / 3, 2 / 3])
        v = vol.iloc[pos]
        expected = "low" if v <= lo else "mid" if v <= hi else "high"
        assert labels.iloc[pos] == expected
    assert labels.iloc[:146].isna().all()  # 21 bars of window + shift, 126 of history


def test_vix_label_uses_the_previous_close(market: pd.Series) -> None:
    vix = load_vix()
    assert vix is not None
    idx = pd.DatetimeIndex(market.index[(market.index >= "2016-01-01")])
    labels = vix_regimes(idx, vix)
    assert labels is not None
    bar = idx[300]
    prev = vix[vix.index < bar]
    lo, hi = np.quantile(prev.to_numpy(), [1 / 3, 2 / 3])  # VIX history up to the previous close
    v = prev.iloc[-1]
    assert labels.loc[bar] == ("low" if v <= lo else "mid" if v <= hi else "high")
    # VIX starts in 2014: a 2005-2010 window is not covered and gives no VIX regimes
    old = pd.DatetimeIndex(market.index[(market.index < "2010-01-01")])
    assert vix_regimes(old, vix) is None


def test_drawdown_regimes_flag_bars_after_a_deep_fall() -> None:
    idx = pd.date_range("2020-01-01", periods=6, freq="D", tz="UTC")
    mkt = pd.Series([0.0, -0.05, -0.10, 0.01, 0.30, 0.0], index=idx)
    labels = drawdown_regimes(mkt, threshold=0.1)
    # equity 1, .95, .855 (-14.5 %), .8636, 1.12: known one bar later
    assert labels.tolist() == ["normal", "normal", "normal", "drawdown", "drawdown", "normal"]
    with pytest.raises(BacktestError, match="threshold"):
        drawdown_regimes(mkt, threshold=1.5)


def test_regime_table_on_buy_and_hold_with_bundled_vix(sp500_panel: Any) -> None:
    cfg = SimConfig()
    start = int(np.searchsorted(sp500_panel.index, pd.Timestamp("2015-01-02", tz="UTC")))
    w = baseline_weights("buy_and_hold", sp500_panel, start)
    rets = run_backtest(sp500_panel, w, cfg, start).returns
    table = regime_table(rets, sp500_panel)
    assert set(table["kind"]) == {"all", "volatility", "drawdown", "vix"}
    all_row = table[table["kind"] == "all"].iloc[0]
    m = compute_metrics(rets)
    assert all_row["bars"] == len(rets)
    assert all_row["sharpe"] == pytest.approx(m["sharpe"])
    assert all_row["max_drawdown"] == pytest.approx(m["max_drawdown"])
    for kind in ("volatility", "vix", "drawdown"):
        part = table[table["kind"] == kind]
        assert 0.9 * len(rets) <= part["bars"].sum() <= len(rets)
        assert part["share"].sum() == pytest.approx(part["bars"].sum() / len(rets))
    vol = table[table["kind"] == "volatility"].set_index("regime")
    # a buy-and-hold book is far more volatile when trailing market volatility is high
    assert vol.loc["high", "annual_volatility"] > 1.5 * vol.loc["low", "annual_volatility"]
    vixt = table[table["kind"] == "vix"].set_index("regime")
    assert vixt.loc["high", "annual_volatility"] > vixt.loc["low", "annual_volatility"]
    # without a market, the strategy's own returns define the regimes; no VIX when told so
    own = regime_table(rets, use_bundled_vix=False)
    assert set(own["kind"]) == {"all", "volatility", "drawdown"}


def test_regime_table_rejects_a_non_datetime_index() -> None:
    with pytest.raises(BacktestError, match="DatetimeIndex"):
        regime_table(pd.Series([0.01, 0.02, -0.01]))


def test_cost_sensitivity_reruns_the_engine_with_scaled_costs(sp500_panel: Any) -> None:
    costs = CostConfig(commission_bps=5.0, half_spread_bps=3.0, slippage_bps=2.0)
    cfg = SimConfig(costs=costs)
    start = sp500_panel.n_bars - 1000
    w = baseline_weights("ma_crossover", sp500_panel, start)
    table = cost_sensitivity(sp500_panel, w, cfg, start)
    # the cost multiples at the configured delay (0), then 1 and 2 extra bars at x1
    assert table["cost_multiplier"].tolist() == [0.0, 1.0, 2.0, 5.0, 1.0, 1.0]
    assert table["delay_bars"].tolist() == [0, 0, 0, 0, 1, 2]
    costs_rows = table.iloc[:4]
    assert table.loc[0, "total_costs"] == 0.0
    assert costs_rows["total_return"].is_monotonic_decreasing
    assert table.loc[3, "total_return"] < table.loc[1, "total_return"] - 0.01
    # x1 is exactly the configured run, x2 exactly a run with CostConfig.scaled(2)
    base = run_backtest(sp500_panel, w, cfg, start)
    assert table.loc[1, "total_return"] == pytest.approx(
        compute_metrics(base.returns)["total_return"]
    )
    doubled = run_backtest(sp500_panel, w, cfg.model_copy(update={"costs": costs.scaled(2)}), start)
    assert table.loc[2, "sharpe"] == pytest.approx(compute_metrics(doubled.returns)["sharpe"])
    charges = ["commission", "spread", "slippage", "impact", "borrow", "margin"]
    assert table.loc[2, "total_costs"] == pytest.approx(float(doubled.costs[charges].sum().sum()))
    # the delay rows are runs with SimConfig.delay_bars = 1 and 2 at the configured costs
    for row, delay in ((4, 1), (5, 2)):
        late = run_backtest(sp500_panel, w, cfg.model_copy(update={"delay_bars": delay}), start)
        assert table.loc[row, "sharpe"] == pytest.approx(compute_metrics(late.returns)["sharpe"])
        assert table.loc[row, "total_return"] != table.loc[1, "total_return"]
    with pytest.raises(BacktestError, match="multiplier"):
        cost_sensitivity(sp500_panel, w, cfg, start, multipliers=(-1.0,))
    with pytest.raises(BacktestError, match="delay"):
        cost_sensitivity(sp500_panel, w, cfg, start, delays=(-1,))
    # a configured delay is the delay of the cost rows; no row is repeated
    late_cfg = cfg.model_copy(update={"delay_bars": 1})
    late_table = cost_sensitivity(sp500_panel, w, late_cfg, start, multipliers=(1.0,))
    assert late_table[["cost_multiplier", "delay_bars"]].values.tolist() == [
        [1.0, 1],
        [1.0, 0],
        [1.0, 2],
    ]
    assert late_table.loc[0, "sharpe"] == pytest.approx(table.loc[4, "sharpe"])
    assert cost_sensitivity(sp500_panel, w, cfg, start, delays=()).shape[0] == 4


def test_cost_sensitivity_over_walk_forward_windows(sp500_panel: Any) -> None:
    cfg = SimConfig(costs=CostConfig(commission_bps=10.0))
    folds = make_folds(sp500_panel.index, WalkForwardConfig(train=3000, test=500))
    w = baseline_weights("ma_crossover", sp500_panel, folds[0].test.start)
    windows = [fold_test_window(f, sp500_panel.n_bars) for f in folds]
    table = cost_sensitivity(
        sp500_panel, w, cfg, multipliers=(0.0, 1.0), windows=windows, delays=(0,)
    )
    assert table.loc[0, "total_return"] > table.loc[1, "total_return"]
    single = cost_sensitivity(sp500_panel, w, cfg, *windows[0], multipliers=(1.0,), delays=(0,))
    assert single.loc[0, "total_costs"] < table.loc[1, "total_costs"]

    calls: list[float] = []

    def run(k: float) -> pd.Series:
        calls.append(k)
        return run_backtest(
            sp500_panel, w, cfg.model_copy(update={"costs": cfg.costs.scaled(k)}), *windows[0]
        ).returns

    generic = cost_sensitivity_from(run, (0.0, 1.0))
    assert calls == [0.0, 1.0]
    assert generic.loc[1, "sharpe"] == pytest.approx(single.loc[0, "sharpe"])
