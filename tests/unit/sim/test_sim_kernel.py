"""The compiled one-account step (``sim.kernel.account_step``) equals ``sim.step`` on real data.

Paths of seeded random targets (NaN holds, shorts, leverage above the limit) are run through
both on bundled real prices with every cost switched on: bit-identical for one asset (the same
IEEE additions, products, divisions and square roots in the same order, so on every CPU),
equal to float rounding of the sums over assets (1e-12 relative) for a portfolio.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tradeforge.core.errors import SimulationError
from tradeforge.data.panel import BarPanel
from tradeforge.sim import MarketArrays, SimConfig, initial_state, step
from tradeforge.sim.kernel import (
    N_OUT_ROWS,
    NUMBA_AVAILABLE,
    account_step,
    market_stack,
    pack_sim_params,
    stack_for,
)
from tradeforge.testing.sim import EVERY_COST

COSTS = EVERY_COST

SIMS = {
    "long_open": SimConfig(costs=COSTS),
    "short_levered_close": SimConfig(
        costs=COSTS.model_copy(update={"short_rebate_annual": 0.004}),
        allow_short=True,
        max_leverage=1.5,
        max_position=1.2,
        fill_price="close",
    ),
    "lots_capped_vwap": SimConfig(
        costs=COSTS.model_copy(update={"participation_cap": 0.0005}),
        allow_short=True,
        fractional=False,
        lot_size=10,
        min_trade_value=2_000.0,
        fill_price="vwap",
        initial_cash=250_000,
    ),
}


def run_both(panel: BarPanel, sim: SimConfig, fn: Any, n_steps: int, seed: int) -> int:
    """Step ``sim.step`` and ``fn`` (an ``account_step``) side by side; returns trades seen."""
    market = MarketArrays.for_config(panel, sim)
    stack = stack_for(market, sim.fill_price)
    params = pack_sim_params(sim, market.frequency)
    n = panel.n_symbols
    rng = np.random.default_rng(seed)
    state = initial_state(sim, 1, n)
    shares = np.zeros(n)
    cash = float(sim.initial_cash)
    out = np.zeros((N_OUT_ROWS, n))
    exact = n == 1
    trades = 0
    got_all: dict[str, list[Any]] = {}
    want_all: dict[str, list[Any]] = {}
    start = 30
    for t in range(start, start + n_steps):
        w = rng.uniform(-1.2, 1.2, size=n)
        w[rng.random(n) < 0.2] = np.nan  # hold
        state, res = step(state, w[None, :], market, t, sim)
        cash, prev_eq, eq, borrow, margin, interest = fn(shares, cash, w, stack, t, params, out)
        got = {
            "prev_equity": prev_eq,
            "equity": eq,
            "cash": cash,
            "borrow": borrow,
            "margin": margin,
            "interest": interest,
            "shares": shares,
            "traded_shares": out[0],
            "fill_price": out[1],
            "commission": out[2],
            "spread": out[3],
            "slippage": out[4],
            "impact": out[5],
            "weights": out[6],
        }
        want = {name: getattr(res, name)[0] for name in got if hasattr(res, name)}
        want["cash"], want["shares"] = state.cash[0], state.shares[0]
        for name, value in got.items():
            got_all.setdefault(name, []).append(np.copy(value))
            want_all.setdefault(name, []).append(np.copy(want[name]))
        if not exact:  # keep both accounts on exactly the same path
            shares[:] = state.shares[0]
            cash = float(state.cash[0])
        trades += int(np.count_nonzero(out[0]))
    if sim.max_leverage > 1.0:  # the levered paths really borrowed (and paid margin on it)
        assert sum(float(x) for x in want_all["margin"]) > 0.0
    for name, values in got_all.items():
        a, b = np.array(values), np.array(want_all[name])
        if exact:
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9, err_msg=name)
    return trades


@pytest.mark.parametrize("name", list(SIMS))
def test_one_asset_bit_identical_to_sim_step(sp500_panel: BarPanel, name: str) -> None:
    trades = run_both(sp500_panel, SIMS[name], account_step, n_steps=400, seed=1)
    assert trades > 100  # it really traded (and paid costs on every fill)


@pytest.mark.parametrize("name", list(SIMS))
def test_portfolio_equal_to_sim_step(equities_panel: BarPanel, name: str) -> None:
    trades = run_both(equities_panel, SIMS[name], account_step, n_steps=400, seed=2)
    assert trades > 300


@pytest.mark.skipif(not NUMBA_AVAILABLE, reason="numba is not installed")
def test_plain_python_kernel_matches_too(equities_panel: BarPanel) -> None:
    """The uncompiled function (what runs without numba) follows the same rules."""
    py_func = account_step.py_func  # type: ignore[attr-defined]
    trades = run_both(equities_panel, SIMS["short_levered_close"], py_func, n_steps=60, seed=3)
    assert trades > 50


def test_pack_sim_params_layout() -> None:
    sim = SIMS["lots_capped_vwap"].model_copy(
        update={"costs": COSTS.model_copy(update={"short_rebate_annual": 0.003})}
    )
    params = pack_sim_params(sim)
    assert params.shape == (18,)
    assert params[0] == 1.0  # allow_short
    assert params[3] == 0.0  # fractional
    assert params[4] == 10.0  # lot
    assert params[13] == 1.0  # participation cap
    assert params[14] == 50 * 1e-4 / 252
    assert params[15] == 0.01 / 252  # cash rate
    assert params[16] == (0.01 + 0.015) / 252  # margin: cash rate + the default spread
    assert params[17] == 0.003 / 252  # short rebate
    # per-bar rates follow the data frequency unless periods_per_year is set
    assert pack_sim_params(sim, "1h")[14] == 50 * 1e-4 / (252 * 7)
    fixed = sim.model_copy(update={"periods_per_year": 100})
    assert pack_sim_params(fixed, "1h")[14] == 50 * 1e-4 / 100


@pytest.mark.skipif(not NUMBA_AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("fill_price", ["open", "close", "vwap"])
@pytest.mark.parametrize("windows", [(20, 20), (7, 3), (2, 1)])
def test_market_stack_is_the_stack_of_market_arrays_bit_for_bit(
    fill_price: Any, windows: tuple[int, int]
) -> None:
    """The one-pass compiled stack (the backtester's fast path) repeats ``sim.market``'s numpy
    arithmetic: the same bits, on real data with holes (WTI has no volume, the stocks start late)
    and with a VWAP field that is missing on some bars."""
    from tradeforge.data.bundled import load_bundled_panel

    panel = load_bundled_panel(["AAPL", "IBM", "MSFT", "WTI", "SP500"])
    assert np.isnan(panel.close).sum() > 1000
    assert np.isnan(panel.volume).sum() > 1000
    vwap = (panel.high + panel.low) / 2.0
    vwap[::7] = np.nan
    for given in (None, vwap):
        vol_window, adv_window = windows
        sim = SimConfig(fill_price=fill_price, vol_window=vol_window, adv_window=adv_window)
        market = MarketArrays.from_arrays(
            panel.open,
            panel.high,
            panel.low,
            panel.close,
            panel.volume,
            vol_window=vol_window,
            vwap=given,
            adv_window=adv_window,
        )
        want = stack_for(market, sim.fill_price)
        got = market_stack(
            panel.open,
            panel.high,
            panel.low,
            panel.close,
            panel.volume,
            given,
            fill_price,
            vol_window,
            adv_window,
        )
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)  # NaN where NaN, every other value exact
        assert np.isfinite(got).sum() > 0.5 * got.size


def test_market_stack_names_bad_arguments() -> None:
    x = np.ones((10, 2))
    with pytest.raises(SimulationError, match="vol_window = 1"):
        market_stack(x, x, x, x, x, None, "open", 1, 5)
    with pytest.raises(SimulationError, match="adv_window = 0"):
        market_stack(x, x, x, x, x, None, "open", 5, 0)
    with pytest.raises(SimulationError, match="fill_price = 'mid'"):
        market_stack(x, x, x, x, x, None, "mid", 5, 5)  # type: ignore[arg-type]
    with pytest.raises(SimulationError, match="'volume' has shape"):
        market_stack(x, x, x, x, np.ones((10, 3)), None, "open", 5, 5)
