"""Baselines: hand-checked weights, no lookahead (perturbation tests), min-variance fitted on the
training window only, and baselines run through the engine."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from tradeforge.backtest.baselines import (
    BASELINES,
    baseline_weights,
    frictionless_returns,
    min_variance,
    min_variance_covariance,
    min_variance_weights,
    rebalance_mask,
)
from tradeforge.backtest.engine import run_backtest, run_baselines
from tradeforge.core.errors import BacktestError
from tradeforge.data.bundled import load_bundled_panel
from tradeforge.data.panel import BarPanel
from tradeforge.sim import CostConfig, SimConfig

TRAIN_END = 600
PARAMS: dict[str, dict[str, object]] = {
    "buy_and_hold": {},
    "equal_weight": {"every": "M"},
    "ma_crossover": {"fast": 10, "slow": 40},
    "momentum": {"lookback": 60, "top_k": 2, "every": 21},
    "min_variance": {"every": "Q"},
    "cash": {},
}


@pytest.fixture(scope="module")
def four_panel() -> BarPanel:
    """AAPL, IBM, MSFT from 2000 and GOOG from its 2004 listing (NaN before): real, staggered."""
    return load_bundled_panel(["AAPL", "IBM", "MSFT", "GOOG"])


def perturbed(panel: BarPanel, after: int, seed: int) -> BarPanel:
    """A copy whose bars after ``after`` are scrambled (prices rescaled, some holes punched)."""
    rng = np.random.default_rng(seed)
    shape = panel.close[after + 1 :].shape
    factor = np.exp(np.cumsum(rng.normal(0.0, 0.05, shape), axis=0))
    holes = rng.random(shape) < 0.05

    def scramble(a: np.ndarray) -> np.ndarray:
        out = a.copy()
        out[after + 1 :] = np.where(holes, np.nan, a[after + 1 :] * factor)
        return out

    return replace(
        panel,
        open=scramble(panel.open),
        high=scramble(panel.high),
        low=scramble(panel.low),
        close=scramble(panel.close),
        volume=scramble(panel.volume),
    )


def test_registry_names() -> None:
    assert set(BASELINES) == set(PARAMS)


@pytest.mark.parametrize("name", list(PARAMS))
def test_no_lookahead_weights_at_t_use_data_up_to_t(four_panel: BarPanel, name: str) -> None:
    base = baseline_weights(name, four_panel, TRAIN_END, **PARAMS[name])
    assert base.shape == (four_panel.n_bars, 4)
    assert (base[:TRAIN_END] == 0.0).all()  # cash before the first decision bar
    for k, cut in enumerate((TRAIN_END, TRAIN_END + 37, 1200, 2500)):
        other = baseline_weights(name, perturbed(four_panel, cut, k), TRAIN_END, **PARAMS[name])
        np.testing.assert_array_equal(other[: cut + 1], base[: cut + 1])
        if name not in ("cash", "buy_and_hold"):  # visible later: the test can fail
            assert not np.array_equal(other[cut + 1 :], base[cut + 1 :], equal_nan=True)


def test_backtests_of_baselines_do_not_look_ahead(four_panel: BarPanel) -> None:
    config = SimConfig(costs=CostConfig(commission_bps=5, slippage_vol_mult=0.1, impact_coef=0.1))
    cut = 1500
    a = run_baselines(four_panel, config, TRAIN_END, 2000, params=PARAMS)
    b = run_baselines(perturbed(four_panel, cut, 9), config, TRAIN_END, 2000, params=PARAMS)
    for name in PARAMS:
        ea, eb = a[name].equity, b[name].equity
        np.testing.assert_array_equal(
            ea.loc[: four_panel.index[cut]], eb.loc[: four_panel.index[cut]]
        )
        if name != "cash":
            assert ea.iloc[-1] != eb.iloc[-1]


def test_min_variance_is_fitted_on_the_training_window_only(four_panel: BarPanel) -> None:
    p = four_panel.select(["AAPL", "IBM", "MSFT"])
    w = min_variance(p, TRAIN_END, every="M")
    for cut in (TRAIN_END - 1, TRAIN_END + 100):  # everything from bar train_end on is scrambled
        other = min_variance(perturbed(p, cut, 1), TRAIN_END, every="M")
        fitted = other[TRAIN_END]
        np.testing.assert_array_equal(fitted, w[TRAIN_END])
        in_window = ~np.isnan(other[TRAIN_END:]).any(axis=1) & ~np.isnan(w[TRAIN_END:]).any(axis=1)
        rows = np.flatnonzero(in_window) + TRAIN_END
        both_priced = np.isfinite(perturbed(p, cut, 1).close[rows]).all(axis=1)
        np.testing.assert_array_equal(other[rows[both_priced]], w[rows[both_priced]])
    # ... while changing a training bar changes the fit (the test above can fail)
    inside = perturbed(p, TRAIN_END - 50, 2)
    assert not np.allclose(min_variance(inside, TRAIN_END)[TRAIN_END], w[TRAIN_END])
    # GOOG (listed in 2004) has no training history in 2000-2002: left out with weight 0
    staggered = min_variance(four_panel, TRAIN_END)
    assert staggered[TRAIN_END, 3] == 0.0
    np.testing.assert_allclose(staggered[TRAIN_END, :3], w[TRAIN_END])
    # fitted weights: long-only, fully invested, and no feasible portfolio has lower variance
    cov = min_variance_covariance(p, TRAIN_END)
    opt = w[TRAIN_END]
    assert opt.sum() == pytest.approx(1.0)
    assert (opt >= 0).all()
    rng = np.random.default_rng(0)
    others = rng.dirichlet(np.ones(3), 2000)
    assert opt @ cov @ opt <= np.einsum("ki,ij,kj->k", others, cov, others).min() + 1e-15
    returns = p.close[1:TRAIN_END] / p.close[: TRAIN_END - 1] - 1.0
    np.testing.assert_allclose(cov, np.cov(returns, rowvar=False), rtol=1e-12)


def test_min_variance_closed_form_and_start_rule(four_panel: BarPanel) -> None:
    cov = np.array([[0.04, 0.006], [0.006, 0.01]])
    w = min_variance_weights(cov, long_only=False)
    # two assets: w1 = (s2^2 - s12) / (s1^2 + s2^2 - 2 s12)
    assert w[0] == pytest.approx((0.01 - 0.006) / (0.04 + 0.01 - 0.012))
    assert w.sum() == pytest.approx(1.0)
    with pytest.raises(BacktestError, match="before train_end - 1"):
        min_variance(four_panel, TRAIN_END, start=TRAIN_END - 5)


def test_equal_weight_buy_and_hold_cash_by_hand(four_panel: BarPanel) -> None:
    p = four_panel
    ew = baseline_weights("equal_weight", p, TRAIN_END, every="M")
    mask = rebalance_mask(p.index, "M", TRAIN_END)
    decided = np.flatnonzero(~np.isnan(ew).all(axis=1) & (np.arange(p.n_bars) >= TRAIN_END))
    np.testing.assert_array_equal(decided, np.flatnonzero(mask))
    months = p.index[decided[1:]].month
    prev_months = p.index[decided[1:] - 1].month
    assert (months != prev_months).all()  # first bar of each month
    priced = np.isfinite(p.close[decided])
    np.testing.assert_allclose(ew[decided], priced / priced.sum(axis=1, keepdims=True))
    assert np.isnan(ew[decided[1] - 1]).all()  # between rebalances: hold (weights drift)
    bh = baseline_weights("buy_and_hold", p, TRAIN_END)
    assert np.flatnonzero(~np.isnan(bh).all(axis=1))[-1] == TRAIN_END
    assert (baseline_weights("cash", p, TRAIN_END) == 0.0).all()
    assert rebalance_mask(p.index, 5, 10)[[10, 15, 20]].all()
    assert rebalance_mask(p.index, 5, 10).sum() == len(range(10, p.n_bars, 5))


def test_ma_crossover_and_momentum_by_hand(four_panel: BarPanel) -> None:
    p = four_panel
    ma = baseline_weights("ma_crossover", p, TRAIN_END, fast=10, slow=40)
    close = pd.DataFrame(p.close)
    fast = close.rolling(10).mean().to_numpy()
    slow = close.rolling(40).mean().to_numpy()
    t = 2000
    expected = np.where(fast[t] > slow[t], 0.25, 0.0)
    np.testing.assert_allclose(ma[t], expected)
    assert 0 < (ma[TRAIN_END:] > 0).mean() < 1

    mom = baseline_weights("momentum", p, TRAIN_END, lookback=60, top_k=2, every=21)
    t = TRAIN_END + 21 * 40
    score = p.close[t] / p.close[t - 60] - 1.0
    best = np.argsort(-np.nan_to_num(score, nan=-np.inf))[:2]
    expected = np.zeros(4)
    expected[best] = 0.5
    np.testing.assert_allclose(mom[t], expected)
    assert np.isnan(mom[t + 1]).all()
    # before GOOG lists it can never be picked
    assert (mom[TRAIN_END:1100, 3] == 0.0).all() or np.isnan(mom[TRAIN_END:1100, 3]).any()


def test_baselines_through_the_engine(four_panel: BarPanel) -> None:
    config = SimConfig(costs=CostConfig(commission_bps=10))
    res = run_baselines(
        four_panel, config, TRAIN_END, 1800, names=["cash", "equal_weight", "buy_and_hold"]
    )
    assert list(res) == ["cash", "equal_weight", "buy_and_hold"]
    assert (res["cash"].equity == config.initial_cash).all()
    assert res["cash"].fills.empty
    ew = res["equal_weight"]
    assert ew.equity.index[0] == four_panel.index[TRAIN_END]
    months = ew.fills["decision_timestamp"].dt.tz_localize(None).dt.to_period("M").nunique()
    assert months == ew.fills["decision_timestamp"].nunique()  # one rebalance a month
    assert len(res["buy_and_hold"].fills) == 3  # GOOG is not listed yet in 2002
    frictionless = frictionless_returns(
        four_panel, baseline_weights("buy_and_hold", four_panel, TRAIN_END), TRAIN_END
    )
    # fills at the next open instead of the close: close, but not the same
    engine_total = res["buy_and_hold"].equity.iloc[-1] / config.initial_cash - 1.0
    ideal_total = float(np.prod(1.0 + frictionless.iloc[: 1800 - TRAIN_END - 1]) - 1.0)
    assert engine_total == pytest.approx(ideal_total, abs=0.05)
    with pytest.raises(BacktestError, match="unknown baseline 'magic'"):
        baseline_weights("magic", four_panel, TRAIN_END)
    with pytest.raises(BacktestError, match="bad parameters"):
        baseline_weights("momentum", four_panel, TRAIN_END, window=3)
    with pytest.raises(BacktestError, match="not run"):
        run_baselines(four_panel, config, TRAIN_END, names=["cash"], params={"momentum": {}})
    direct = run_backtest(
        four_panel, baseline_weights("equal_weight", four_panel, TRAIN_END), config, TRAIN_END, 1800
    )
    np.testing.assert_array_equal(direct.equity.to_numpy(), ew.equity.to_numpy())


@pytest.fixture(scope="module")
def sp500() -> BarPanel:
    return load_bundled_panel(["SP500"])


def test_single_asset_momentum_is_time_series_momentum(sp500: BarPanel) -> None:
    """One asset: long while the trailing 126-bar return is positive, else cash (not buy-and-hold)."""
    p = sp500
    mom = baseline_weights("momentum", p, TRAIN_END, lookback=126, every="M")
    decided = np.flatnonzero(rebalance_mask(p.index, "M", TRAIN_END))
    close = p.close[:, 0]
    expected = np.where(close[decided] / close[decided - 126] - 1.0 > 0, 1.0, 0.0)
    np.testing.assert_array_equal(mom[decided, 0], expected)
    assert np.isnan(mom[decided[0] + 1 : decided[1]]).all()  # hold between rebalances
    # long in uptrends, cash in downtrends: e.g. the 2008 crash is sat out
    assert 0.5 < expected.mean() < 0.9
    crash = (p.index[decided] >= pd.Timestamp("2008-10-01", tz="UTC")) & (
        p.index[decided] < pd.Timestamp("2009-04-01", tz="UTC")
    )
    assert crash.sum() == 6
    assert (expected[crash] == 0.0).all()
    hold = frictionless_returns(p, baseline_weights("buy_and_hold", p, TRAIN_END), TRAIN_END)
    tsmom = frictionless_returns(p, mom, TRAIN_END)
    assert not np.allclose(hold.to_numpy(), tsmom.to_numpy())
    assert (tsmom[hold.abs() > 0] == 0.0).sum() > 500  # bars spent in cash
    # decided from closes up to t only: scrambling every bar after t changes nothing up to t
    for k, cut in enumerate((TRAIN_END + 37, 2000, 4000)):
        other = baseline_weights("momentum", perturbed(p, cut, k), TRAIN_END, lookback=126)
        np.testing.assert_array_equal(other[: cut + 1], mom[: cut + 1])
        assert not np.array_equal(other[cut + 1 :], mom[cut + 1 :], equal_nan=True)


def test_momentum_kinds(sp500: BarPanel, four_panel: BarPanel) -> None:
    # cross-sectional on one asset always ranks it first: that is buy-and-hold, kept on request
    xs = baseline_weights("momentum", sp500, TRAIN_END, kind="cross_sectional")
    decided = ~np.isnan(xs[:, 0])
    assert (xs[decided & (np.arange(sp500.n_bars) >= TRAIN_END), 0] == 1.0).all()
    # portfolios default to cross-sectional ...
    auto = baseline_weights("momentum", four_panel, TRAIN_END, lookback=60, top_k=2)
    cross = baseline_weights(
        "momentum", four_panel, TRAIN_END, lookback=60, top_k=2, kind="cross_sectional"
    )
    np.testing.assert_array_equal(auto, cross)
    # ... and time-series on a portfolio gives each priced symbol a 1/N sleeve while it trends up
    ts = baseline_weights("momentum", four_panel, TRAIN_END, lookback=60, kind="time_series")
    t = TRAIN_END + 21 * 60  # a rebalance row once all four symbols are listed
    t = int(np.flatnonzero(~np.isnan(ts[t:, 0]))[0]) + t
    score = four_panel.close[t] / four_panel.close[t - 60] - 1.0
    assert np.isfinite(score).all()
    np.testing.assert_array_equal(ts[t], np.where(score > 0, 0.25, 0.0))
    early = ts[TRAIN_END]  # GOOG is not listed yet: three sleeves of 1/3
    score0 = four_panel.close[TRAIN_END, :3] / four_panel.close[TRAIN_END - 60, :3] - 1.0
    np.testing.assert_allclose(early, np.append(np.where(score0 > 0, 1 / 3, 0.0), 0.0))
    with pytest.raises(BacktestError, match="momentum kind = 'sideways'"):
        baseline_weights("momentum", sp500, TRAIN_END, kind="sideways")
