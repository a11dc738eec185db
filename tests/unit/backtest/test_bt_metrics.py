"""compute_metrics cross-checked against empyrical-reloaded and quantstats on real S&P 500 returns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tradeforge.backtest.metrics import (
    closed_trades,
    compute_metrics,
    drawdown_series,
    max_drawdown_duration,
    rolling_sharpe,
    trade_pnls,
    var_cvar,
)
from tradeforge.core.errors import BacktestError

empyrical = pytest.importorskip("empyrical")


@pytest.fixture(scope="module")
def sp500_returns(sp500_panel) -> pd.Series:
    close = pd.Series(sp500_panel.close[:, 0], index=sp500_panel.index)
    return close.pct_change().dropna()


@pytest.fixture(scope="module")
def strategy_and_bench(sp500_returns: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A 'strategy' that is a real transform of the index: 60 % exposure on days after an up day."""
    bench = sp500_returns
    exposure = (bench.shift(1) > 0).astype(float) * 0.6 + 0.2
    return (bench * exposure).iloc[1:], bench.iloc[1:]


def test_return_and_risk_metrics_match_empyrical(sp500_returns: pd.Series) -> None:
    r = sp500_returns
    m = compute_metrics(r)
    assert m["total_return"] == pytest.approx(empyrical.cum_returns_final(r), rel=1e-10)
    assert m["annual_return"] == pytest.approx(empyrical.annual_return(r), rel=1e-10)
    assert m["annual_volatility"] == pytest.approx(empyrical.annual_volatility(r), rel=1e-10)
    assert m["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r), rel=1e-10)
    assert m["sortino"] == pytest.approx(empyrical.sortino_ratio(r), rel=1e-10)
    assert m["max_drawdown"] == pytest.approx(empyrical.max_drawdown(r), rel=1e-10)
    assert m["calmar"] == pytest.approx(empyrical.calmar_ratio(r), rel=1e-10)
    assert m["var"] == pytest.approx(empyrical.value_at_risk(r, 0.05), rel=1e-10)
    assert m["cvar"] == pytest.approx(empyrical.conditional_value_at_risk(r, 0.05), rel=1e-10)
    # known facts about this sample: the 2007-2009 crash took the index down ~57 %
    assert -0.60 < m["max_drawdown"] < -0.55
    assert m["n_periods"] == len(r)


def test_alpha_beta_information_ratio_match_empyrical(strategy_and_bench) -> None:
    r, b = strategy_and_bench
    m = compute_metrics(r, b)
    alpha, beta = empyrical.alpha_beta(r, b)
    assert m["beta"] == pytest.approx(beta, rel=1e-9)
    assert m["alpha"] == pytest.approx(alpha, rel=1e-9)
    assert m["information_ratio"] == pytest.approx(
        empyrical.excess_sharpe(r, b) * math.sqrt(252), rel=1e-9
    )
    assert m["tracking_error"] == pytest.approx(empyrical.annual_volatility(r - b), rel=1e-9)
    assert 0.2 < m["beta"] < 0.8


def test_benchmark_is_aligned_on_common_timestamps(strategy_and_bench) -> None:
    r, b = strategy_and_bench
    shuffled = b.iloc[::-1]  # same data, other order: alignment must be by timestamp
    assert compute_metrics(r, shuffled)["beta"] == pytest.approx(compute_metrics(r, b)["beta"])
    with pytest.raises(BacktestError, match="benchmark shares 0 timestamps"):
        compute_metrics(
            r, pd.Series([0.01, 0.02], index=pd.date_range("1990", periods=2, tz="UTC"))
        )


def test_win_rate_profit_factor_exposure_match_quantstats(sp500_returns: pd.Series) -> None:
    qs = pytest.importorskip("quantstats")
    r = sp500_returns.copy()
    r.iloc[::7] = 0.0  # flat days must not count as wins or losses
    m = compute_metrics(r)
    assert m["win_rate"] == pytest.approx(qs.stats.win_rate(r), rel=1e-12)
    assert m["profit_factor"] == pytest.approx(qs.stats.profit_factor(r), rel=1e-12)
    # quantstats rounds exposure up to whole percent
    assert math.ceil(m["exposure"] * 100) / 100 == pytest.approx(qs.stats.exposure(r))
    assert m["exposure"] == pytest.approx(6 / 7, abs=2e-3)


def test_drawdown_duration_and_series_by_hand() -> None:
    r = np.array([0.1, -0.5, 0.2, 0.5, 0.5, -0.1, 0.0])
    # equity 1.1, .55, .66, .99, 1.485 (new high), 1.3365, 1.3365
    assert max_drawdown_duration(r) == 3
    idx = pd.date_range("2020-01-01", periods=len(r), tz="UTC")
    dd = drawdown_series(pd.Series(r, index=idx))
    assert dd.iloc[1] == pytest.approx(0.55 / 1.1 - 1)
    assert dd.iloc[4] == 0.0
    m = compute_metrics(pd.Series(r, index=idx))
    assert m["max_drawdown"] == pytest.approx(-0.5)
    assert m["max_drawdown_duration"] == 3.0
    # a first-period loss is a drawdown from the starting value 1
    assert compute_metrics(pd.Series([-0.1, 0.05, 0.01]))["max_drawdown"] == pytest.approx(-0.1)


def test_var_cvar_by_hand() -> None:
    r = np.arange(-10, 10, dtype=float) / 100  # -0.10 .. 0.09
    var, cvar = var_cvar(r, 0.1)
    assert var == pytest.approx(np.percentile(r, 10))
    assert cvar == pytest.approx(np.mean([-0.10, -0.09]))  # int(19 * 0.1) + 1 = 2 worst
    with pytest.raises(BacktestError, match="var level"):
        var_cvar(r, 1.5)


def test_trades_turnover_exposure_and_costs() -> None:
    trades = pd.DataFrame(
        {
            "timestamp": pd.date_range("2020-01-01", periods=5, tz="UTC"),
            "symbol": ["A", "A", "B", "A", "B"],
            "shares": [10.0, -5.0, -4.0, -5.0, 4.0],
            "price": [100.0, 110.0, 50.0, 90.0, 45.0],
            "costs": [1.0, 1.0, 1.0, 1.0, 1.0],
        }
    )
    pnl = trade_pnls(trades)
    # Opening fees go into the average cost: A basis (1000 + 1) / 10 = 100.1; sell 5 @110 ->
    # 5 * 9.9 - 1 = 48.5; sell 5 @90 -> 5 * -10.1 - 1 = -51.5. B short 4 @50 less 1 fee: basis
    # 49.75; cover @45 -> 4 * 4.75 - 1 = 18. The sum (15) is the cash result of both round trips.
    np.testing.assert_allclose(pnl, [48.5, -51.5, 18.0])
    cash = -(trades["shares"] * trades["price"]).sum() - trades["costs"].sum()
    assert pnl.sum() == pytest.approx(cash)
    closed = closed_trades(trades)
    assert list(closed["symbol"]) == ["A", "A", "B"]
    np.testing.assert_allclose(closed["side"], [1.0, 1.0, -1.0])
    np.testing.assert_allclose(closed["entry_price"], [100.1, 100.1, 49.75])
    idx = pd.date_range("2020-01-01", periods=4, tz="UTC")
    r = pd.Series([0.01, -0.02, 0.0, 0.03], index=idx)
    weights = pd.DataFrame({"A": [0.5, 0.5, 0.0, -0.2], "B": [0.5, 0.0, 0.0, 0.3]}, index=idx)
    costs = pd.DataFrame(
        {"commission": [1.0, 2.0, 0, 0], "slippage": [0.5, 0, 0, 0.5], "margin": [0, 0, 0.5, 0.5]},
        index=idx,
    )
    m = compute_metrics(
        r, trades=trades, turnover=pd.Series([1.0, 0.5, 0.5, 0.0], index=idx),
        exposure=weights, costs=costs, initial_equity=10_000.0,
    )  # fmt: skip
    assert m["n_fills"] == 5
    assert m["n_trades"] == 3
    assert m["trade_win_rate"] == pytest.approx(2 / 3)
    assert m["avg_trade_pnl"] == pytest.approx(15 / 3)
    assert m["trade_profit_factor"] == pytest.approx(66.5 / 51.5)
    assert m["turnover_total"] == pytest.approx(2.0)
    assert m["turnover_annual"] == pytest.approx(0.5 * 252)
    assert m["exposure"] == pytest.approx((1.0 + 0.5 + 0.0 + 0.5) / 4)
    assert m["costs_paid"] == pytest.approx(4.0)  # commission 3 + margin interest 1
    assert m["cost_margin"] == pytest.approx(1.0)
    assert m["slippage_paid"] == pytest.approx(1.0)
    assert m["costs_bps"] == pytest.approx(5.0)
    with pytest.raises(BacktestError, match="unknown columns"):
        compute_metrics(r, costs=pd.DataFrame({"fees": [1.0]}))


def test_pnl_column_is_used_directly_and_degenerate_inputs() -> None:
    r = pd.Series([0.0, 0.0, 0.0])
    m = compute_metrics(r, trades=pd.DataFrame({"pnl": [1.0, -2.0, 3.0]}))
    assert m["trade_profit_factor"] == pytest.approx(2.0)
    assert math.isnan(m["sharpe"])
    assert math.isnan(m["win_rate"])
    assert math.isnan(m["calmar"])
    assert m["max_drawdown"] == 0.0
    with pytest.raises(BacktestError, match="infinite"):
        compute_metrics(pd.Series([0.1, np.inf]))
    with pytest.raises(BacktestError, match="periods_per_year"):
        compute_metrics(r, periods_per_year=0)


def test_rolling_sharpe_uses_only_the_past(sp500_returns: pd.Series) -> None:
    r = sp500_returns.iloc[:400]
    rs = rolling_sharpe(r, 60)
    changed = r.copy()
    changed.iloc[300:] = 0.05
    rs2 = rolling_sharpe(changed, 60)
    pd.testing.assert_series_equal(rs.iloc[:300], rs2.iloc[:300])
    window = r.iloc[140:200]
    assert rs.iloc[199] == pytest.approx(window.mean() / window.std() * math.sqrt(252))


def test_drawdown_duration_matches_quantstats(sp500_returns: pd.Series) -> None:
    qs = pytest.importorskip("quantstats")
    # quantstats counts calendar days: on a gap-free daily index one day is one bar
    r = pd.Series(
        sp500_returns.to_numpy(), index=pd.date_range("2000-01-01", periods=len(sp500_returns))
    )
    details = qs.stats.drawdown_details(qs.stats.to_drawdown_series(r))
    m = compute_metrics(r)
    assert m["max_drawdown_duration"] == details["days"].max() > 1000


def test_metrics_of_a_real_backtest_match_empyrical(equities_panel) -> None:
    """The engine's own net returns (equal weight, monthly, with costs) through compute_metrics."""
    from tradeforge.backtest.baselines import baseline_weights
    from tradeforge.backtest.engine import run_backtest
    from tradeforge.sim import CostConfig, SimConfig

    w = baseline_weights("equal_weight", equities_panel, 250, every="M")
    config = SimConfig(costs=CostConfig(commission_bps=5, half_spread_bps=2, slippage_bps=1))
    res = run_backtest(equities_panel, w, config, start=250, kernel="step")
    r, bench = (
        res.returns,
        (pd.Series(equities_panel.close[:, 1], index=equities_panel.index).pct_change()),
    )
    m = res.metrics(benchmark=bench)
    assert m["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r), rel=1e-10)
    assert m["sortino"] == pytest.approx(empyrical.sortino_ratio(r), rel=1e-10)
    assert m["max_drawdown"] == pytest.approx(empyrical.max_drawdown(r), rel=1e-10)
    assert m["annual_return"] == pytest.approx(empyrical.annual_return(r), rel=1e-10)
    assert m["calmar"] == pytest.approx(empyrical.calmar_ratio(r), rel=1e-10)
    b = bench.reindex(r.index)
    alpha, beta = empyrical.alpha_beta(r, b)
    assert m["alpha"] == pytest.approx(alpha, rel=1e-9)
    assert m["beta"] == pytest.approx(beta)
    assert m["total_return"] == pytest.approx(res.equity.iloc[-1] / res.equity.iloc[0] - 1)
    costs = res.costs
    # fully invested: an opening gap leaves cash a little negative, and that loan pays margin
    assert costs["margin"].sum() > 0
    assert m["cost_margin"] == pytest.approx(costs["margin"].sum())
    assert m["costs_paid"] == pytest.approx(
        costs["commission"].sum() + costs["spread"].sum() + costs["margin"].sum()
    )
    assert m["slippage_paid"] == pytest.approx(costs["slippage"].sum())
    assert m["costs_paid"] > 0
    assert m["slippage_paid"] > 0
    assert m["turnover_total"] == pytest.approx(res.turnover.sum())
    assert 0.9 < m["exposure"] < 1.01  # fully invested between monthly rebalances
    assert m["n_fills"] == len(res.fills)
    assert m["n_trades"] == len(res.trades) > 50
    assert m["avg_trade_pnl"] == pytest.approx(res.trades["pnl"].mean())


def test_closed_trades_flip_and_partial_close() -> None:
    fills = pd.DataFrame(
        {
            "symbol": ["A", "A", "A"],
            "shares": [10.0, -15.0, 5.0],
            "price": [10.0, 12.0, 11.0],
            "costs": [0.0, 1.5, 0.0],
        }
    )
    t = closed_trades(fills)
    # sell 15: closes 10 long (+20, fee 1.0 of 1.5), opens 5 short at 12 with 0.5 fee folded in
    np.testing.assert_allclose(t["pnl"], [19.0, 5 * (12.0 - 0.5 / 5 - 11.0)])
    np.testing.assert_allclose(t["side"], [1.0, -1.0])
    assert t["pnl"].sum() == pytest.approx(-(fills["shares"] * fills["price"]).sum() - 1.5)
