"""Hand-computed examples of ``sim.step``: each cost model, caps, lots, limits, NaN prices."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from tradeforge.core.errors import ConfigError, SimulationError
from tradeforge.sim import (
    AccountState,
    CostConfig,
    MarketArrays,
    SimConfig,
    equity,
    initial_state,
    reset_rows,
    step,
)


def flat_market(
    close: list[list[float]], open_: list[list[float]] | None = None, volume: float = 1e9
) -> MarketArrays:
    c = np.array(close, dtype=float)
    o = c if open_ is None else np.array(open_, dtype=float)
    return MarketArrays.from_arrays(
        o, np.maximum(o, c), np.minimum(o, c), c, np.full_like(c, volume), vol_window=2
    )


def test_commission_spread_slippage_by_hand() -> None:
    market = flat_market([[100.0], [100.0], [110.0]], open_=[[100.0], [105.0], [110.0]])
    costs = CostConfig(
        commission_bps=10, commission_per_share=0.01, half_spread_bps=5, slippage_bps=3
    )
    config = SimConfig(costs=costs, initial_cash=10_000)
    state = initial_state(config, 1, 1)
    new, res = step(state, np.array([0.5]), market, 0, config)
    shares = 0.5 * 10_000 / 100.0  # sized at close[0]
    notional = shares * 105.0  # filled at open[1]
    assert res.traded_shares[0, 0] == pytest.approx(shares)
    assert res.commission[0, 0] == pytest.approx(notional * 10e-4 + shares * 0.01)
    assert res.spread[0, 0] == pytest.approx(notional * 5e-4)
    assert res.slippage[0, 0] == pytest.approx(notional * 3e-4)
    fees = notional * 18e-4 + shares * 0.01
    assert new.cash[0] == pytest.approx(10_000 - notional - fees)
    assert res.equity[0] == pytest.approx(10_000 - notional - fees + shares * 100.0)
    assert res.weights[0, 0] == pytest.approx(shares * 100.0 / res.equity[0])


def test_minimum_commission_and_no_fee_without_trade() -> None:
    market = flat_market([[10.0, 10.0], [10.0, 10.0]])
    config = SimConfig(costs=CostConfig(commission_bps=1, min_commission=5.0), initial_cash=1000)
    _, res = step(initial_state(config, 1, 2), np.array([0.1, 0.0]), market, 0, config)
    np.testing.assert_allclose(res.commission, [[5.0, 0.0]])


def test_volatility_slippage_and_sqrt_impact() -> None:
    close = np.array([[100.0], [102.0], [99.0], [101.0]])
    volume = np.full_like(close, 10_000.0)
    market = MarketArrays.from_arrays(close, close, close, close, volume, vol_window=3)
    sigma = market.volatility[2, 0]
    r = np.array([0.02, 99 / 102 - 1])
    assert sigma == pytest.approx(np.std(r, ddof=1))
    costs = CostConfig(slippage_vol_mult=0.5, impact_coef=0.2)
    config = SimConfig(costs=costs, initial_cash=99_000, fill_price="close")
    _, res = step(initial_state(config, 1, 1), np.array([1.0]), market, 2, config)
    shares = 1000.0  # 99,000 / 99
    notional = shares * 101.0
    assert res.slippage[0, 0] == pytest.approx(notional * 0.5 * sigma)
    assert res.impact[0, 0] == pytest.approx(notional * 0.2 * sigma * math.sqrt(0.1))


def test_participation_cap_limits_shares() -> None:
    market = flat_market([[10.0], [10.0]], volume=1000.0)  # ADV 1,000 at the decision bar
    config = SimConfig(costs=CostConfig(participation_cap=0.1))
    _, res = step(initial_state(config, 1, 1), np.array([1.0]), market, 0, config)
    assert res.traded_shares[0, 0] == pytest.approx(100.0)


@pytest.mark.parametrize(("cap", "expected"), [(1.0, 1000.0), (0.5, 0.0)])
def test_unknown_volume_means_no_cap_only_at_full_participation(
    cap: float, expected: float
) -> None:
    c = np.array([[10.0], [10.0]])
    market = MarketArrays.from_arrays(c, c, c, c, np.array([[np.nan], [np.nan]]))
    config = SimConfig(costs=CostConfig(participation_cap=cap), initial_cash=10_000)
    _, res = step(initial_state(config, 1, 1), np.array([1.0]), market, 0, config)
    assert res.traded_shares[0, 0] == pytest.approx(expected)


def test_lot_sizes_round_toward_zero() -> None:
    market = flat_market([[7.0, 7.0], [7.0, 7.0]])
    config = SimConfig(fractional=False, lot_size=10.0, initial_cash=1000.0, allow_short=True)
    new, _ = step(initial_state(config, 1, 2), np.array([0.5, -0.3]), market, 0, config)
    # 500/7 = 71.4 -> 70 shares; -300/7 = -42.9 -> -40 shares
    np.testing.assert_array_equal(new.shares, [[70.0, -40.0]])


def test_position_and_leverage_limits_clip_targets() -> None:
    market = flat_market([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    config = SimConfig(max_position=0.5, max_leverage=1.2, initial_cash=100.0, allow_short=True)
    new, _ = step(initial_state(config, 1, 3), np.array([0.9, -0.9, 0.2]), market, 0, config)
    # clip to +-0.5 -> gross 1.2 == limit
    np.testing.assert_allclose(new.shares, [[50.0, -50.0, 20.0]])
    long_only = SimConfig(initial_cash=100.0)
    new, _ = step(initial_state(long_only, 1, 3), np.array([0.8, -0.5, 0.8]), market, 0, long_only)
    np.testing.assert_allclose(new.shares, [[50.0, 0.0, 50.0]])  # 1.6 gross scaled to 1.0


def test_nan_prices_mean_no_trade_and_last_close_marking() -> None:
    close = [[10.0, np.nan], [11.0, 20.0], [np.nan, 21.0], [12.0, 22.0]]
    market = flat_market(close)
    config = SimConfig(initial_cash=1000.0)
    state = initial_state(config, 1, 2)
    state, res = step(state, np.array([0.5, 0.5]), market, 0, config)
    np.testing.assert_allclose(res.traded_shares, [[50.0, 0.0]])  # asset 1 has no price at t=0
    state, res = step(state, np.array([0.0, 0.5]), market, 1, config)
    assert res.traded_shares[0, 0] == 0.0  # asset 0 does not trade at t=2: position kept
    assert res.traded_shares[0, 1] > 0.0
    # asset 0 is marked at its last known close (11) at bar 2
    expected = state.cash[0] + 50.0 * 11.0 + state.shares[0, 1] * 21.0
    assert res.equity[0] == pytest.approx(expected)


FREE_LOANS = CostConfig(margin_spread_annual=0.0)  # cash borrowed at the cash rate (0 here)


def test_nan_target_holds_and_per_row_time() -> None:
    market = flat_market([[10.0], [12.0], [15.0]])
    config = SimConfig(initial_cash=100.0, costs=FREE_LOANS)
    state = AccountState(cash=np.array([0.0, 100.0]), shares=np.array([[10.0], [0.0]]))
    new, res = step(state, np.array([[np.nan], [1.0]]), market, np.array([1, 0]), config)
    np.testing.assert_array_equal(new.shares[:, 0], [10.0, 10.0])
    # row 1 sized 10 shares at close[0]=10 but filled at open[1]=12: cash goes to -20
    np.testing.assert_allclose(res.equity, [150.0, 100.0])
    np.testing.assert_allclose(new.cash, [0.0, -20.0])
    np.testing.assert_allclose(res.prev_equity, [120.0, 100.0])


def test_borrow_and_interest_by_hand() -> None:
    market = flat_market([[100.0], [100.0]])
    costs = CostConfig(borrow_bps_annual=252.0, cash_rate_annual=0.252)
    config = SimConfig(costs=costs, allow_short=True, initial_cash=1000.0)
    _, res = step(initial_state(config, 1, 1), np.array([-0.5]), market, 0, config)
    assert res.borrow[0] == pytest.approx(500.0 * 1e-4)  # 252 bps/yr over 252 bars
    # cash 1,500 = 500 short collateral (no rebate by default) + 1,000 free cash: only the free
    # cash earns the cash rate (it used to earn on all 1,500: the short paid interest twice)
    assert res.interest[0] == pytest.approx(1000.0 * 0.001)
    assert res.margin[0] == 0.0
    assert res.equity[0] == pytest.approx(1000.0 - 0.05 + 1.0)


def test_short_collateral_earns_the_rebate_rate_only() -> None:
    market = flat_market([[100.0], [100.0]])
    costs = CostConfig(cash_rate_annual=0.252, short_rebate_annual=0.0252)
    config = SimConfig(costs=costs, allow_short=True, initial_cash=1000.0)
    _, res = step(initial_state(config, 1, 1), np.array([-1.0]), market, 0, config)
    # cash 2,000 = 1,000 collateral at 1 bp a bar + 1,000 free at 10 bp a bar
    assert res.interest[0] == pytest.approx(1000.0 * 1e-4 + 1000.0 * 1e-3)
    assert res.margin[0] == 0.0


def test_two_times_leverage_pays_margin_interest() -> None:
    """A 2x long borrows its equity: the loan pays cash rate + margin spread, every bar."""
    market = flat_market([[100.0], [100.0], [100.0]])
    config = SimConfig(costs=CostConfig(), max_leverage=2.0, max_position=2.0, initial_cash=1000.0)
    assert config.costs.margin_rate_annual == 0.015  # the default: 0 cash rate + 1.5 % spread
    state, res = step(initial_state(config, 1, 1), np.array([2.0]), market, 0, config)
    assert state.shares[0, 0] == pytest.approx(20.0)
    assert res.margin[0] == pytest.approx(1000.0 * 0.015 / 252)
    assert res.interest[0] == 0.0
    assert res.equity[0] == pytest.approx(1000.0 - 1000.0 * 0.015 / 252)
    # with a cash rate the loan costs the cash rate plus the spread
    paid = CostConfig(cash_rate_annual=0.0252, margin_spread_annual=0.0252)
    cfg = config.model_copy(update={"costs": paid})
    _, res = step(initial_state(cfg, 1, 1), np.array([2.0]), market, 0, cfg)
    assert res.margin[0] == pytest.approx(1000.0 * 0.0504 / 252)
    # longs bought with the proceeds of shorts are a loan too: long 1,500 and short 500 leave
    # cash 0 = the short's collateral 500 + free cash -500
    pair = SimConfig(
        costs=paid, allow_short=True, max_leverage=2.0, max_position=1.5, initial_cash=1000.0
    )
    two = flat_market([[100.0, 100.0], [100.0, 100.0]])
    new, res = step(initial_state(pair, 1, 2), np.array([1.5, -0.5]), two, 0, pair)
    assert new.cash[0] + res.margin[0] == pytest.approx(0.0)
    assert res.margin[0] == pytest.approx(500.0 * 0.0504 / 252)
    assert res.interest[0] == 0.0


def test_carry_rates_follow_the_data_frequency() -> None:
    """Per-bar rates divide by the bars per year of the data unless periods_per_year is set."""
    c = np.array([[100.0], [100.0]])
    hourly = MarketArrays.from_arrays(c, c, c, c, np.full_like(c, 1e9), frequency="1h")
    costs = CostConfig(cash_rate_annual=0.1764)
    config = SimConfig(costs=costs, initial_cash=1000.0)
    _, res = step(initial_state(config, 1, 1), np.array([0.0]), hourly, 0, config)
    assert res.interest[0] == pytest.approx(1000.0 * 0.1764 / 1764)  # 252 days x 7 bars
    crypto = config.model_copy(update={"calendar": "crypto"})
    _, res = step(initial_state(crypto, 1, 1), np.array([0.0]), hourly, 0, crypto)
    assert res.interest[0] == pytest.approx(1000.0 * 0.1764 / 8760)
    fixed = config.model_copy(update={"periods_per_year": 252})
    _, res = step(initial_state(fixed, 1, 1), np.array([0.0]), hourly, 0, fixed)
    assert res.interest[0] == pytest.approx(1000.0 * 0.1764 / 252)


def test_participation_cap_and_impact_use_trailing_volume() -> None:
    """The cap and the impact of an order decided at t read the mean volume of bars t-1..t
    (adv_window = 2), not the fill bar's volume."""
    c = np.full((4, 1), 10.0)
    volume = np.array([[1000.0], [3000.0], [5.0], [1e9]])
    market = MarketArrays.from_arrays(c, c, c, c, volume, vol_window=2, adv_window=2)
    np.testing.assert_allclose(market.adv[:, 0], [1000.0, 2000.0, 1502.5, 5e8 + 2.5])
    config = SimConfig(costs=CostConfig(participation_cap=0.1), adv_window=2)
    _, res = step(initial_state(config, 1, 1), np.array([1.0]), market, 1, config)
    assert res.traded_shares[0, 0] == pytest.approx(200.0)  # 0.1 x 2,000 (fill bar: 5 shares)
    rough = np.array([[100.0], [101.0], [99.0], [100.0]])
    market = MarketArrays.from_arrays(rough, rough, rough, rough, volume, 2, adv_window=2)
    config = SimConfig(costs=CostConfig(impact_coef=0.5), adv_window=2, initial_cash=9_900.0)
    _, res = step(initial_state(config, 1, 1), np.array([1.0]), market, 2, config)
    shares = 100.0  # 9,900 / 99
    sigma = market.volatility[2, 0]
    expected = shares * 100.0 * 0.5 * sigma * math.sqrt(shares / 1502.5)
    assert res.impact[0, 0] == pytest.approx(expected)


def test_equity_helper_and_reset_rows() -> None:
    config = SimConfig(initial_cash=5.0)
    state = AccountState(cash=np.array([1.0, 2.0]), shares=np.array([[1.0, 0.0], [2.0, 3.0]]))
    np.testing.assert_allclose(
        equity(state, np.array([10.0, np.nan])[None].repeat(2, 0)), [11, np.nan]
    )
    np.testing.assert_allclose(equity(state, np.array([10.0, 1.0])), [11.0, 25.0])
    fresh = reset_rows(state, np.array([False, True]), config)
    np.testing.assert_array_equal(fresh.cash, [1.0, 5.0])
    np.testing.assert_array_equal(fresh.shares, [[1.0, 0.0], [0.0, 0.0]])


def test_step_rejects_bad_inputs() -> None:
    market = flat_market([[10.0], [10.0]])
    config = SimConfig()
    state = initial_state(config, 2, 1)
    with pytest.raises(SimulationError, match="t in"):
        step(state, np.array([1.0]), market, 1, config)
    with pytest.raises(SimulationError, match="target_weights have shape"):
        step(state, np.ones((3, 1)), market, 0, config)
    with pytest.raises(SimulationError, match="dtype"):
        step(state, np.array([1.0]), market, 0.0, config)  # type: ignore[arg-type]
    with pytest.raises(SimulationError, match="inf"):
        step(state, np.array([np.inf]), market, 0, config)


def test_configs_validate_and_scale() -> None:
    with pytest.raises(ValidationError, match="commission_bps"):
        CostConfig(commission_bps=-1)
    with pytest.raises(ValidationError, match="extra"):
        SimConfig(leverage=2)  # type: ignore[call-arg]
    costs = CostConfig(
        commission_bps=2, impact_coef=0.1, participation_cap=0.2, cash_rate_annual=0.01
    )
    doubled = costs.scaled(2.0)
    assert doubled.commission_bps == 4
    assert doubled.impact_coef == pytest.approx(0.2)
    assert doubled.participation_cap == 0.2
    assert doubled.cash_rate_annual == 0.01
    assert costs.scaled(0.0).is_frictionless
    with pytest.raises(ConfigError, match="k = -1"):
        costs.scaled(-1.0)


def test_market_from_panel_matches_bundled(sp500_panel) -> None:  # type: ignore[no-untyped-def]
    market = MarketArrays.from_panel(sp500_panel, vol_window=20)
    assert market.close.shape == (sp500_panel.n_bars, 1)
    t = 300
    r = sp500_panel.close[t - 19 : t + 1, 0] / sp500_panel.close[t - 20 : t, 0] - 1
    assert market.volatility[t, 0] == pytest.approx(np.std(r, ddof=1), rel=1e-8)
    expected_vwap = (sp500_panel.open + sp500_panel.high + sp500_panel.low + sp500_panel.close) / 4
    np.testing.assert_allclose(market.vwap, expected_vwap)
    assert not market.close.flags.writeable


def test_volatility_and_mark_use_only_the_past() -> None:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (30, 2)), axis=0))
    close[5:8, 1] = np.nan
    base = MarketArrays.from_arrays(close, close, close, close, np.ones_like(close), vol_window=5)
    changed = close.copy()
    changed[20:] *= 3.0
    other = MarketArrays.from_arrays(changed, changed, changed, changed, np.ones_like(close), 5)
    np.testing.assert_array_equal(base.volatility[:20], other.volatility[:20])
    np.testing.assert_array_equal(base.mark[:20], other.mark[:20])
    np.testing.assert_array_equal(base.mark[5:8, 1], close[4, 1])


@pytest.mark.parametrize("fill", ["open", "close", "vwap"])
def test_fills_at_the_chosen_price_of_the_next_bar(fill: str) -> None:
    o = np.array([[10.0], [11.0], [12.0]])
    h = np.array([[10.5], [13.0], [12.5]])
    lo = np.array([[9.5], [10.0], [11.5]])
    c = np.array([[10.0], [12.0], [12.2]])
    v = np.full_like(c, 1e9)
    market = MarketArrays.from_arrays(o, h, lo, c, v, vol_window=2)
    config = SimConfig(fill_price=fill, initial_cash=1000.0, costs=FREE_LOANS)  # type: ignore[arg-type]
    _, res = step(initial_state(config, 1, 1), np.array([1.0]), market, 0, config)
    expected = {"open": 11.0, "close": 12.0, "vwap": (11.0 + 13.0 + 10.0 + 12.0) / 4}[fill]
    assert res.fill_price[0, 0] == expected
    assert res.traded_shares[0, 0] == pytest.approx(100.0)  # sized at close[0] = 10
    assert res.equity[0] == pytest.approx(1000.0 + 100.0 * (12.0 - expected))
    # a real VWAP field of the data replaces the proxy where it is known
    given = np.array([[10.0], [11.7], [np.nan]])
    with_vwap = MarketArrays.from_arrays(o, h, lo, c, v, vol_window=2, vwap=given)
    np.testing.assert_allclose(with_vwap.vwap[:, 0], [10.0, 11.7, (12.0 + 12.5 + 11.5 + 12.2) / 4])
