"""Invariants of ``sim.step`` checked on random markets, accounts, targets and costs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge.sim import AccountState, CostConfig, MarketArrays, SimConfig, step

T_BARS = 6


@st.composite
def markets(draw: st.DrawFn, n_assets: int | None = None) -> MarketArrays:
    n = draw(st.integers(1, 4)) if n_assets is None else n_assets
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, (T_BARS, n)), axis=0))
    close *= rng.uniform(0.05, 20.0, n)
    open_ = close * np.exp(rng.normal(0.0, 0.02, (T_BARS, n)))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    volume = rng.choice([0.0, 50.0, 1e3, 1e5, 1e7], size=(T_BARS, n))
    if draw(st.booleans()):  # holes: assets not trading yet / any more
        holes = rng.random((T_BARS, n)) < 0.2
        for arr in (open_, high, low, close):
            arr[holes] = np.nan
        volume[rng.random((T_BARS, n)) < 0.2] = np.nan
    return MarketArrays.from_arrays(open_, high, low, close, volume, vol_window=3)


costs_st = st.builds(
    CostConfig,
    commission_bps=st.sampled_from([0.0, 1.0, 10.0]),
    commission_per_share=st.sampled_from([0.0, 0.005]),
    min_commission=st.sampled_from([0.0, 1.0]),
    half_spread_bps=st.sampled_from([0.0, 2.5]),
    slippage_bps=st.sampled_from([0.0, 3.0]),
    slippage_vol_mult=st.sampled_from([0.0, 0.5]),
    impact_coef=st.sampled_from([0.0, 0.3]),
    participation_cap=st.sampled_from([0.01, 0.1, 1.0]),
    borrow_bps_annual=st.sampled_from([0.0, 50.0]),
    cash_rate_annual=st.sampled_from([0.0, 0.03]),
    margin_spread_annual=st.sampled_from([0.0, 0.015, 0.05]),
    short_rebate_annual=st.sampled_from([0.0, 0.02]),
)

configs = st.builds(
    SimConfig,
    costs=costs_st,
    fill_price=st.sampled_from(["open", "close", "vwap"]),
    initial_cash=st.sampled_from([1e4, 1e6]),
    allow_short=st.booleans(),
    max_leverage=st.sampled_from([0.5, 1.0, 2.0]),
    max_position=st.sampled_from([0.3, 1.0]),
    fractional=st.booleans(),
    lot_size=st.sampled_from([1.0, 10.0, 100.0]),
)


@st.composite
def cases(
    draw: st.DrawFn, start_flat: bool = False
) -> tuple[AccountState, np.ndarray, MarketArrays, np.ndarray, SimConfig]:
    market = draw(markets())
    config = draw(configs)
    n = market.n_assets
    b = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t = rng.integers(0, T_BARS - 1, size=b)
    cash = np.full(b, config.initial_cash)
    shares = np.zeros((b, n))
    if not start_flat:
        cash = cash * rng.uniform(0.2, 1.0, b)
        lots = rng.integers(-50, 50, size=(b, n)).astype(float)
        if not config.allow_short:
            lots = np.abs(lots)
        known = np.isfinite(market.mark[t])  # only assets that have traded can be held
        shares = np.where(known, lots * config.lot_size, 0.0)
    w = rng.uniform(-1.5, 1.5, size=(b, n))
    w[rng.random((b, n)) < 0.2] = np.nan
    return AccountState(cash=cash, shares=shares), w, market, t, config


@settings(max_examples=150, deadline=None)
@given(cases())
def test_value_is_conserved_net_of_costs(case: tuple) -> None:
    state, w, market, t, config = case
    new, res = step(state, w, market, t, config)
    mark0, mark1 = market.mark[t], market.mark[t + 1]
    held = state.shares != 0
    pnl_hold = np.where(held, state.shares * (mark1 - mark0), 0.0).sum(axis=1)
    traded = res.traded_shares
    pnl_fill = np.where(traded != 0, traded * (mark1 - res.fill_price), 0.0).sum(axis=1)
    expected = res.prev_equity + pnl_hold + pnl_fill - res.total_costs + res.interest
    np.testing.assert_allclose(res.equity, expected, rtol=1e-10, atol=1e-6)
    assert np.all(np.isfinite(res.equity))
    np.testing.assert_allclose(new.shares, state.shares + traded, rtol=0, atol=0)
    # equity from the new state marked at close[t+1] is the reported equity
    mark_value = np.where(new.shares != 0, new.shares * mark1, 0.0).sum(axis=1)
    np.testing.assert_allclose(new.cash + mark_value, res.equity, rtol=1e-12)


@settings(max_examples=150, deadline=None)
@given(cases())
def test_costs_never_negative_and_only_where_traded(case: tuple) -> None:
    state, w, market, t, config = case
    _, res = step(state, w, market, t, config)
    for name in ("commission", "spread", "slippage", "impact"):
        arr = getattr(res, name)
        assert np.all(arr >= 0.0), name
        assert np.all(arr[res.traded_shares == 0] == 0.0), name
    assert np.all(res.borrow >= 0.0)
    assert np.all(res.margin >= 0.0)
    assert np.all(res.interest >= 0.0)


@settings(max_examples=150, deadline=None)
@given(cases())
def test_carry_splits_cash_into_short_collateral_and_free_cash(case: tuple) -> None:
    """Margin is paid only on negative free cash, cash interest only on positive free cash, and
    the short collateral earns the rebate rate, never the cash rate."""
    state, w, market, t, config = case
    new, res = step(state, w, market, t, config)
    c = config.costs
    mark1 = market.mark[t + 1]
    short = np.where(new.shares < 0, -new.shares * mark1, 0.0).sum(axis=1)
    cash_before_carry = new.cash + res.borrow + res.margin - res.interest
    free = cash_before_carry - short
    ppy = 252
    np.testing.assert_allclose(
        res.margin, np.maximum(-free, 0.0) * c.margin_rate_annual / ppy, rtol=1e-9, atol=1e-12
    )
    expected_interest = np.maximum(free, 0.0) * c.cash_rate_annual / ppy
    expected_interest += short * c.short_rebate_annual / ppy
    np.testing.assert_allclose(res.interest, expected_interest, rtol=1e-9, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(cases())
def test_fills_respect_volume_cap_and_tradability(case: tuple) -> None:
    state, w, market, t, config = case
    _, res = step(state, w, market, t, config)
    volume = market.adv[t]  # trailing average volume known at the decision bar
    cap = config.costs.participation_cap
    traded = np.abs(res.traded_shares)
    known = np.isfinite(volume) & (volume > 0)
    assert np.all(traded[known] <= cap * volume[known] * (1 + 1e-12))
    if cap < 1.0:
        assert np.all(traded[~known] == 0.0)
    price = market.fill_prices(config.fill_price)[t + 1]
    assert np.all(traded[~np.isfinite(price)] == 0.0)
    # NaN target = hold: no order in that asset
    assert np.all(res.traded_shares[np.isnan(w)] == 0.0)


@settings(max_examples=150, deadline=None)
@given(cases())
def test_lot_sizes_and_shorting_rules(case: tuple) -> None:
    state, w, market, t, config = case
    new, res = step(state, w, market, t, config)
    if not config.fractional:
        lots = new.shares / config.lot_size
        np.testing.assert_allclose(lots, np.round(lots), atol=1e-6)
        lots_traded = res.traded_shares / config.lot_size
        np.testing.assert_allclose(lots_traded, np.round(lots_traded), atol=1e-6)
    if not config.allow_short:
        assert np.all(new.shares >= -1e-9)


@settings(max_examples=150, deadline=None)
@given(cases(start_flat=True))
def test_position_and_leverage_limits_from_cash(case: tuple) -> None:
    state, w, market, t, config = case
    new, res = step(state, w, market, t, config)
    # weights of the new holdings at the prices used for sizing (close[t])
    mark0 = market.mark[t]
    value = np.where(new.shares != 0, new.shares * mark0, 0.0)
    wt = value / res.prev_equity[:, None]
    tol = 1e-9
    assert np.all(np.abs(wt) <= config.max_position + tol)
    assert np.all(np.abs(wt).sum(axis=1) <= config.max_leverage + tol)
    if not config.allow_short:
        assert np.all(wt >= -tol)


@settings(max_examples=100, deadline=None)
@given(cases())
def test_rows_are_independent(case: tuple) -> None:
    """A batched step equals stepping each row alone (what the batched env relies on)."""
    state, w, market, t, config = case
    new, res = step(state, w, market, t, config)
    for i in range(state.n_batch):
        one = AccountState(cash=state.cash[i : i + 1], shares=state.shares[i : i + 1])
        new_i, res_i = step(one, w[i : i + 1], market, t[i : i + 1], config)
        np.testing.assert_array_equal(new_i.cash, new.cash[i : i + 1])
        np.testing.assert_array_equal(new_i.shares, new.shares[i : i + 1])
        np.testing.assert_array_equal(res_i.equity, res.equity[i : i + 1])


@settings(max_examples=100, deadline=None)
@given(cases(), st.integers(0, 2**16))
def test_no_lookahead_past_the_fill_bar(case: tuple, seed: int) -> None:
    """Changing any bar after t+1 never changes the step's result."""
    state, w, market, t, config = case
    t_row = np.full_like(t, int(t.min()))
    _, base = step(state, w, market, t_row, config)
    cut = int(t_row[0]) + 2
    rng = np.random.default_rng(seed)
    fields = {}
    for name in ("open", "high", "low", "close", "volume"):
        arr = getattr(market, name).copy()
        arr[cut:] = arr[cut:] * rng.uniform(0.5, 2.0, arr[cut:].shape)
        fields[name] = arr
    perturbed = MarketArrays.from_arrays(vol_window=3, **fields)
    _, other = step(state, w, perturbed, t_row, config)
    for name in ("equity", "traded_shares", "commission", "impact", "slippage", "weights"):
        np.testing.assert_array_equal(getattr(base, name), getattr(other, name))


@settings(max_examples=100, deadline=None)
@given(cases(), st.integers(0, 2**16))
def test_caps_and_impact_never_read_volume_after_the_decision_bar(case: tuple, seed: int) -> None:
    """Volume from the fill bar t+1 on is not known at t: changing it changes no fill or cost."""
    state, w, market, t, config = case
    config = config.model_copy(
        update={"costs": config.costs.model_copy(update={"impact_coef": 0.3})}
    )
    t_row = np.full_like(t, int(t.min()))
    _, base = step(state, w, market, t_row, config)
    rng = np.random.default_rng(seed)
    volume = market.volume.copy()
    cut = int(t_row[0]) + 1
    volume[cut:] = rng.choice([0.0, 1.0, 1e9, np.nan], size=volume[cut:].shape)
    perturbed = MarketArrays.from_arrays(
        market.open, market.high, market.low, market.close, volume, vol_window=3
    )
    _, other = step(state, w, perturbed, t_row, config)
    for name in ("equity", "traded_shares", "impact", "commission", "weights"):
        np.testing.assert_array_equal(getattr(base, name), getattr(other, name))
