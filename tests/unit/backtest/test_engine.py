"""run_backtest: alignment, outputs, kernels equal to sim.step, and a hand-written reference loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bt_helpers import RICH_CONFIGS, RICH_COSTS, random_weights

from tradeforge.backtest.engine import decision_window, run_backtest
from tradeforge.backtest.engine_kernel import (
    N_SCALARS,
    SC_BORROW,
    SC_MARGIN,
    compiled_kernel,
    numba_available,
    simulate_path,
)
from tradeforge.core.errors import BacktestError
from tradeforge.data.panel import BarPanel
from tradeforge.sim import CostConfig, MarketArrays, SimConfig
from tradeforge.sim import kernel as sim_kernel

needs_numba = pytest.mark.skipif(not numba_available(), reason="numba is not installed")


@needs_numba
@pytest.mark.parametrize(
    "config",
    RICH_CONFIGS,
)
def test_compiled_kernel_equals_the_sim_step_loop(
    equities_panel: BarPanel, config: SimConfig
) -> None:
    w = random_weights(equities_panel, 1, config.allow_short)
    a = run_backtest(equities_panel, w, config, start=50, end=1500, kernel="step")
    b = run_backtest(equities_panel, w, config, start=50, end=1500, kernel="numba")
    np.testing.assert_allclose(b.equity, a.equity, rtol=1e-12)
    np.testing.assert_allclose(b.positions, a.positions, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(b.costs, a.costs, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(b.weights, a.weights, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.cash, a.cash, rtol=1e-12)
    np.testing.assert_allclose(b.turnover, a.turnover, rtol=1e-12, atol=1e-15)
    assert len(a.fills) == len(b.fills) > 100
    pd.testing.assert_frame_equal(
        b.fills[["timestamp", "symbol"]], a.fills[["timestamp", "symbol"]]
    )
    np.testing.assert_allclose(b.fills["costs"], a.fills["costs"], rtol=1e-12)
    assert a.costs["impact"].sum() > 0
    if config.max_leverage > 1.0:
        assert a.costs["margin"].sum() > 0  # the levered run borrowed and paid for it
    # the held weights are the simulator's: positions marked at close over equity
    mark = MarketArrays.for_config(equities_panel, config).mark[50:1500]
    expected = b.positions.to_numpy() * mark / b.equity.to_numpy()[:, None]
    np.testing.assert_allclose(b.weights, np.nan_to_num(expected), rtol=1e-12, atol=1e-15)


@needs_numba
def test_compiled_path_is_a_loop_over_account_step(equities_panel: BarPanel) -> None:
    """``simulate_path`` adds no arithmetic: it equals a loop over ``sim.kernel.account_step``
    bit for bit (every output, every bar), with every cost, shorts and lots switched on."""
    config = SimConfig(
        costs=RICH_COSTS, allow_short=True, max_leverage=1.5, fractional=False, lot_size=5
    )
    market = MarketArrays.for_config(equities_panel, config)
    stacked = sim_kernel.stack_for(market, config.fill_price)
    params = sim_kernel.pack_sim_params(config, market.frequency)
    w = random_weights(equities_panel, 5, allow_short=True)
    start, stop, n = 40, 700, equities_panel.n_symbols
    n_dec = stop - start
    out = np.full((sim_kernel.N_OUT_ROWS, n_dec, n), -1.0)
    out_shares = np.full((n_dec, n), -1.0)
    out_scalars = np.full((N_SCALARS, n_dec), -1.0)
    compiled_kernel()(w, stacked, start, stop, 1e6, params, out, out_shares, out_scalars)

    shares, cash = np.zeros(n), 1e6
    row = np.zeros((sim_kernel.N_OUT_ROWS, n))
    for i, t in enumerate(range(start, stop)):
        cash, prev_eq, eq, borrow, margin, interest = sim_kernel.account_step(
            shares, cash, w[t], stacked, t, params, row
        )
        np.testing.assert_array_equal(out[:, i], row)
        np.testing.assert_array_equal(out_shares[i], shares)
        np.testing.assert_array_equal(
            out_scalars[:, i], [prev_eq, eq, cash, borrow, margin, interest]
        )
    assert np.count_nonzero(out[sim_kernel.OUT_TRADED]) > 500
    assert out[sim_kernel.OUT_IMPACT].sum() > 0
    assert out_scalars[SC_BORROW].sum() > 0  # borrow paid on the shorts
    assert out_scalars[SC_MARGIN].sum() > 0  # margin paid on the loans


def test_cost_rows_of_the_sim_kernel_are_the_engine_fee_order() -> None:
    """The engine slices the kernel's commission..impact rows as its (4, L, N) fees."""
    rows = [sim_kernel.OUT_COMMISSION, sim_kernel.OUT_SPREAD, sim_kernel.OUT_SLIPPAGE]
    assert [*rows, sim_kernel.OUT_IMPACT] == list(
        range(sim_kernel.OUT_COMMISSION, sim_kernel.OUT_IMPACT + 1)
    )


def test_plain_python_path_matches_the_step_loop(equities_panel: BarPanel) -> None:
    """Without numba ``simulate_path`` is plain Python over ``account_step``: same rules."""
    fn = getattr(simulate_path, "py_func", simulate_path)
    config = SimConfig(costs=RICH_COSTS, allow_short=True, fill_price="vwap")
    w = random_weights(equities_panel, 9, allow_short=True)
    ref = run_backtest(equities_panel, w, config, start=100, end=161, kernel="step")
    market = MarketArrays.for_config(equities_panel, config)
    stacked = sim_kernel.stack_for(market, "vwap")
    n = equities_panel.n_symbols
    out, shares, scalars = np.zeros((7, 60, n)), np.zeros((60, n)), np.zeros((N_SCALARS, 60))
    params = sim_kernel.pack_sim_params(config, market.frequency)
    fn(w, stacked, 100, 160, config.initial_cash, params, out, shares, scalars)
    np.testing.assert_allclose(scalars[1], ref.equity.to_numpy()[1:], rtol=1e-12)
    np.testing.assert_allclose(shares, ref.positions.to_numpy()[1:], rtol=1e-12, atol=1e-9)
    assert np.count_nonzero(out[sim_kernel.OUT_TRADED]) > 50


def reference_backtest(
    panel: BarPanel, weights: np.ndarray, cash0: float, bps: float
) -> np.ndarray:
    """A deliberately plain loop: fractional shares, commission in bps, fill at next open."""
    n_bars, n = weights.shape
    shares = np.zeros(n)
    cash = cash0
    last = np.full(n, np.nan)
    out = [cash0]
    for t in range(n_bars - 1):
        for j in range(n):
            if np.isfinite(panel.close[t, j]):
                last[j] = panel.close[t, j]
        value = cash + sum(shares[j] * last[j] for j in range(n) if shares[j] != 0)
        for j in range(n):
            w = weights[t, j]
            price = panel.open[t + 1, j]
            if np.isnan(w) or not np.isfinite(last[j]) or not np.isfinite(price):
                continue
            delta = w * value / last[j] - shares[j]
            cash -= delta * price + abs(delta) * price * bps * 1e-4
            shares[j] += delta
        for j in range(n):
            if np.isfinite(panel.close[t + 1, j]):
                last[j] = panel.close[t + 1, j]
        out.append(cash + sum(shares[j] * last[j] for j in range(n) if shares[j] != 0))
    return np.array(out)


@pytest.mark.parametrize("kernel", ["step", pytest.param("numba", marks=needs_numba)])
def test_matches_a_plain_reference_loop(equities_panel: BarPanel, kernel: str) -> None:
    panel = equities_panel.iloc(slice(0, 600))
    rng = np.random.default_rng(7)
    w = rng.dirichlet(np.ones(3), panel.n_bars) * 0.95
    w[::5] = np.nan  # hold every fifth bar
    config = SimConfig(costs=CostConfig(commission_bps=10), initial_cash=50_000)
    res = run_backtest(panel, w, config, kernel=kernel)  # type: ignore[arg-type]
    np.testing.assert_allclose(
        res.equity.to_numpy(), reference_backtest(panel, w, 50_000, 10), rtol=1e-10
    )


def test_alignment_and_output_frames(equities_panel: BarPanel) -> None:
    panel = equities_panel.iloc(slice(0, 40))
    w = np.full((40, 3), np.nan)
    w[10] = [0.2, 0.3, 0.4]
    config = SimConfig(costs=CostConfig(commission_bps=10, borrow_bps_annual=10))
    res = run_backtest(panel, w, config, start=5, end=30, kernel="step")
    idx = panel.index[5:30]
    for obj in (res.equity, res.weights, res.positions, res.costs, res.turnover, res.cash):
        pd.testing.assert_index_equal(obj.index, idx)
    pd.testing.assert_index_equal(res.returns.index, idx[1:])
    assert res.equity.iloc[0] == config.initial_cash
    assert (res.positions.iloc[:6] == 0).all().all()  # decision at bar 10 fills at bar 11
    assert (res.positions.iloc[6] > 0).all()
    assert list(res.fills["timestamp"].unique()) == [panel.index[11]]
    assert list(res.fills["decision_timestamp"].unique()) == [panel.index[10]]
    np.testing.assert_allclose(res.fills["price"], panel.open[11])
    np.testing.assert_allclose(res.fills["commission"], res.fills["notional"] * 1e-3)
    assert res.costs.loc[panel.index[11], "commission"] == pytest.approx(res.fills["costs"].sum())
    held = res.weights.iloc[6].to_numpy()
    np.testing.assert_allclose(held, [0.2, 0.3, 0.4], atol=0.02)  # drift between close and open
    assert res.turnover.iloc[6] == pytest.approx(res.fills["notional"].sum() / config.initial_cash)
    np.testing.assert_allclose(res.returns, res.equity.pct_change().iloc[1:])
    summary = res.summary()
    assert summary["n_fills"] == 3
    assert summary["total_commission"] == pytest.approx(res.fills["commission"].sum())
    assert summary["final_equity"] == res.equity.iloc[-1]


def test_zero_weights_stay_in_cash_and_earn_interest(sp500_panel: BarPanel) -> None:
    config = SimConfig(costs=CostConfig(cash_rate_annual=0.0252), initial_cash=100.0)
    w = np.zeros((sp500_panel.n_bars, 1))
    res = run_backtest(sp500_panel, w, config, end=11)
    np.testing.assert_allclose(res.equity.iloc[-1], 100.0 * 1.0001**10)
    assert res.fills.empty
    assert res.trades.empty


def test_bad_inputs_are_named(sp500_panel: BarPanel) -> None:
    config = SimConfig()
    w = np.zeros((sp500_panel.n_bars, 1))
    with pytest.raises(BacktestError, match="shape"):
        run_backtest(sp500_panel, np.zeros((10, 1)), config)
    with pytest.raises(BacktestError, match="start = 10, end = 11"):
        run_backtest(sp500_panel, w, config, start=10, end=11)
    w[3, 0] = np.inf
    with pytest.raises(BacktestError, match="SP500"):
        run_backtest(sp500_panel, w, config)
    with pytest.raises(BacktestError, match="kernel"):
        run_backtest(sp500_panel, np.zeros((sp500_panel.n_bars, 1)), config, kernel="fast")  # type: ignore[arg-type]


def test_round_trip_trades_and_cost_breakdown(equities_panel: BarPanel) -> None:
    panel = equities_panel.iloc(slice(0, 60))
    w = np.full((60, 3), np.nan)
    w[10] = [0.2, 0.3, 0.4]
    w[30] = [0.0, np.nan, 0.0]  # close AAPL and MSFT, hold IBM
    w[40] = 0.0  # close IBM
    costs = CostConfig(commission_bps=10, half_spread_bps=5, slippage_bps=2, impact_coef=0.5)
    res = run_backtest(panel, w, SimConfig(costs=costs), kernel="step")
    assert len(res.fills) == 3 + 2 + 1
    trades = res.trades
    assert list(trades["symbol"]) == ["AAPL", "MSFT", "IBM"]
    assert (trades["side"] == 1.0).all()
    # everything is closed by bar 41: the trades' P&L (fees included) is the whole P&L
    assert trades["pnl"].sum() == pytest.approx(res.equity.iloc[-1] - res.equity.iloc[0])
    assert res.positions.iloc[-1].abs().sum() == 0.0
    by_type = res.costs.sum()
    for name in ("commission", "spread", "slippage", "impact"):
        assert by_type[name] == pytest.approx(res.fills[name].sum())
        assert by_type[name] > 0
    np.testing.assert_allclose(res.fills["spread"], res.fills["notional"] * 5e-4)
    np.testing.assert_allclose(res.fills["slippage"], res.fills["notional"] * 2e-4)
    assert by_type["borrow"] == 0.0
    assert by_type["interest"] == 0.0


def test_shorts_pay_borrow(sp500_panel: BarPanel) -> None:
    config = SimConfig(costs=CostConfig(borrow_bps_annual=252), allow_short=True)
    w = np.full((sp500_panel.n_bars, 1), np.nan)
    w[0] = -0.5  # short once, then hold
    res = run_backtest(sp500_panel, w, config, end=30, kernel="step")
    short_value = -(res.positions["SP500"] * sp500_panel.close[:30, 0]).to_numpy()
    np.testing.assert_allclose(
        res.costs["borrow"].to_numpy()[1:], short_value[1:] * 1e-4
    )  # 252 bps a year = 1 bp a bar
    assert res.trades.empty  # the short is never covered: no closed trade


def test_decision_window(sp500_panel: BarPanel) -> None:
    w = np.full((50, 2), np.nan)
    w[7, 0] = 0.1
    w[20] = 0.0
    assert decision_window(w) == (7, 22)
    w[49] = 0.5
    assert decision_window(w) == (7, 50)
    with pytest.raises(BacktestError, match="no row"):
        decision_window(np.full((5, 1), np.nan))


def test_without_numba_auto_uses_the_step_loop(
    sp500_panel: BarPanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tradeforge.backtest.engine as engine

    def no_compiled(*args: object, **kwargs: object) -> None:
        raise AssertionError("the compiled kernel must not run without numba")

    monkeypatch.setattr(engine, "numba_available", lambda: False)
    monkeypatch.setattr(engine, "_run_compiled", no_compiled)
    w = np.full((sp500_panel.n_bars, 1), 0.5)
    res = run_backtest(sp500_panel, w, SimConfig(), end=40)  # kernel="auto"
    assert res.positions.iloc[-1, 0] > 0
    with pytest.raises(BacktestError, match="numba is not installed"):
        run_backtest(sp500_panel, w, SimConfig(), end=40, kernel="numba")


def test_backtest_and_env_share_the_numba_switch(
    sp500_panel: BarPanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One flag (``sim.kernel.NUMBA_AVAILABLE``) decides for the env and the backtester."""
    import tradeforge.backtest.engine as engine

    def no_compiled(*args: object, **kwargs: object) -> None:
        raise AssertionError("the compiled kernel must not run without numba")

    monkeypatch.setattr(sim_kernel, "NUMBA_AVAILABLE", False)
    monkeypatch.setattr(engine, "_run_compiled", no_compiled)
    assert not numba_available()
    w = np.full((sp500_panel.n_bars, 1), 0.5)
    config = SimConfig(costs=CostConfig(commission_bps=10))
    res = run_backtest(sp500_panel, w, config, end=40)  # kernel="auto" -> the step loop
    assert res.costs["commission"].iloc[1] > 0
    with pytest.raises(BacktestError, match="numba is not installed"):
        run_backtest(sp500_panel, w, config, end=40, kernel="numba")
    with pytest.raises(BacktestError, match="numba is not installed"):
        compiled_kernel()


@pytest.mark.parametrize("kernel", ["step", pytest.param("numba", marks=needs_numba)])
def test_latency_releases_each_target_delay_bars_later(
    equities_panel: BarPanel, kernel: str
) -> None:
    """delay_bars = 2 is the same run as the targets shifted down by two rows: a decision at
    close[t] is sized at close[t+2] and filled at bar t+3."""
    w = random_weights(equities_panel, 3, allow_short=False)
    config = SimConfig(costs=RICH_COSTS, delay_bars=2)
    late = run_backtest(equities_panel, w, config, start=100, end=400, kernel=kernel)  # type: ignore[arg-type]
    shifted = np.full_like(w, np.nan)
    shifted[102:] = w[100:-2]
    now = config.model_copy(update={"delay_bars": 0})
    ref = run_backtest(equities_panel, shifted, now, start=100, end=400, kernel=kernel)  # type: ignore[arg-type]
    np.testing.assert_array_equal(late.equity, ref.equity)
    np.testing.assert_array_equal(late.positions, ref.positions)
    assert (late.positions.iloc[:3] == 0).all().all()  # bars 100..102 hold nothing yet
    fills = late.fills
    assert len(fills) > 100
    index = equities_panel.index
    gap = fills["timestamp"].map(index.get_loc) - fills["decision_timestamp"].map(index.get_loc)
    assert (gap == 3).all()
    np.testing.assert_array_equal(fills["price"], ref.fills["price"])
    # the same targets without latency trade differently (they are not a relabelled copy)
    assert not np.allclose(run_backtest(equities_panel, w, now, 100, 400).equity, late.equity)


@pytest.mark.parametrize("kernel", ["step", pytest.param("numba", marks=needs_numba)])
def test_fills_up_to_a_bar_never_read_later_volume(equities_panel: BarPanel, kernel: str) -> None:
    """Participation caps and impact use the trailing volume known at the decision: changing
    the volume of bars after t changes nothing up to the fill at t+1."""
    costs = RICH_COSTS.model_copy(update={"participation_cap": 0.0002, "impact_coef": 1.0})
    config = SimConfig(costs=costs, adv_window=10)
    w = random_weights(equities_panel, 4, allow_short=False)
    base = run_backtest(equities_panel, w, config, start=200, end=600, kernel=kernel)  # type: ignore[arg-type]
    t = 400
    volume = equities_panel.volume.copy()
    volume[t + 1 :] *= np.random.default_rng(0).uniform(0.01, 100.0, volume[t + 1 :].shape)
    changed = BarPanel(
        equities_panel.index,
        equities_panel.symbols,
        equities_panel.open,
        equities_panel.high,
        equities_panel.low,
        equities_panel.close,
        volume,
        equities_panel.frequency,
    )
    other = run_backtest(changed, w, config, start=200, end=600, kernel=kernel)  # type: ignore[arg-type]
    upto = t + 1 - 200 + 1  # rows of bars 200..t+1
    np.testing.assert_array_equal(other.equity.iloc[:upto], base.equity.iloc[:upto])
    np.testing.assert_array_equal(other.costs.iloc[:upto], base.costs.iloc[:upto])
    np.testing.assert_array_equal(other.positions.iloc[:upto], base.positions.iloc[:upto])
    assert not np.array_equal(other.positions.iloc[upto:], base.positions.iloc[upto:])
    capped = base.fills["shares"].abs().to_numpy()
    adv = MarketArrays.for_config(equities_panel, config).adv
    rows = base.fills["decision_timestamp"].map(equities_panel.index.get_loc).to_numpy()
    cols = base.fills["symbol"].map(list(equities_panel.symbols).index).to_numpy()
    limit = 0.0002 * adv[rows, cols]
    assert np.all(capped <= limit * (1 + 1e-12))
    assert np.mean(np.isclose(capped, limit, rtol=1e-12)) > 0.3  # the cap often binds


def test_periods_per_year_follow_the_data_frequency() -> None:
    """An hourly FX panel (bundled EUR/USD 2017: 6,225 bars in the year) annualises with
    260 x 24 = 6,240 bars on the fx calendar; an explicit periods_per_year wins."""
    from tradeforge.backtest.metrics import compute_metrics
    from tradeforge.data.bundled import load_bundled_panel

    panel = load_bundled_panel(["EURUSD"], frequency="1h")
    assert abs(panel.n_bars - 6240) / 6240 < 0.01
    w = np.full((panel.n_bars, 1), 0.5)
    costs = CostConfig(cash_rate_annual=0.0624)
    fx = run_backtest(panel, w, SimConfig(costs=costs, calendar="fx"), end=500)
    assert fx.config.periods_per_year == 6240
    assert fx.metrics()["sharpe"] == pytest.approx(
        compute_metrics(fx.returns, periods_per_year=6240)["sharpe"]
    )
    # per-bar cash interest: 6.24 %/yr over 6,240 bars = 1 bp of the free cash per bar
    free = fx.cash.iloc[1] - fx.costs["interest"].iloc[1]
    assert fx.costs["interest"].iloc[1] == pytest.approx(free * 1e-5, rel=1e-9)
    equity_cal = run_backtest(panel, w, SimConfig(costs=costs), end=500)
    assert equity_cal.config.periods_per_year == 252 * 7
    fixed = run_backtest(panel, w, SimConfig(costs=costs, periods_per_year=1000), end=500)
    assert fixed.config.periods_per_year == 1000
    daily = run_backtest(panel.iloc(slice(0, 50)), w[:50], SimConfig(periods_per_year=None))
    assert daily.summary()["volatility"] == pytest.approx(
        float(np.std(daily.returns, ddof=1)) * np.sqrt(1764)
    )


@needs_numba
@pytest.mark.parametrize("fill_price", ["open", "vwap"])
def test_compiled_market_path_equals_given_market_arrays_bit_for_bit(
    equities_panel: BarPanel, fill_price: str
) -> None:
    """Without ``market`` the compiled run builds its stacked market in one pass
    (``sim.kernel.market_stack``); with ``market`` it stacks ``MarketArrays``. Same bits in every
    output, with every cost on (impact and slippage read the ADV and volatility rows)."""
    config = SimConfig(
        costs=RICH_COSTS, allow_short=True, max_leverage=1.5, fill_price=fill_price, vol_window=9
    )
    w = random_weights(equities_panel, 11, allow_short=True)
    market = MarketArrays.for_config(equities_panel, config)
    a = run_backtest(equities_panel, w, config, start=30, end=900, kernel="numba")
    b = run_backtest(equities_panel, w, config, start=30, end=900, market=market, kernel="numba")
    for name in ("equity", "returns", "turnover", "cash"):
        np.testing.assert_array_equal(getattr(a, name).to_numpy(), getattr(b, name).to_numpy())
    for name in ("weights", "positions", "costs"):
        np.testing.assert_array_equal(getattr(a, name).to_numpy(), getattr(b, name).to_numpy())
    pd.testing.assert_frame_equal(a.fills, b.fills)
    np.testing.assert_array_equal(a.records.fill_price, b.records.fill_price)
    assert a.costs["impact"].sum() > 0
    assert a.costs["slippage"].sum() > 0


@needs_numba
def test_traded_values_is_the_numpy_expression() -> None:
    from tradeforge.backtest.engine_kernel import traded_values

    rng = np.random.default_rng(0)
    traded = rng.normal(size=(50, 7))
    traded[rng.random(traded.shape) < 0.4] = 0.0
    price = rng.uniform(1, 100, size=traded.shape)
    price[rng.random(traded.shape) < 0.2] = np.nan  # untradable where nothing traded
    price[traded != 0.0] = np.abs(price[traded != 0.0]) + 1.0
    out = np.full_like(traded, -1.0)
    traded_values(traded, price, out)
    np.testing.assert_array_equal(out, np.abs(np.where(traded != 0.0, traded * price, 0.0)))
