"""The fused backtest loop (``engine_kernel.simulate_path_fused``, what ``run_backtest`` runs with
numba) equals the reference loop over ``sim.kernel.account_step`` (``simulate_path``) bit for bit:
every output row, every bar, on real bundled data with every cost, shorts, lots, filters and
caps switched on, and on edge cases (NaN prices and targets, flat prices, one bar)."""

from __future__ import annotations

import numpy as np
import pytest
from bt_helpers import RICH_CONFIGS, random_weights

from tradeforge.backtest.engine import run_backtest
from tradeforge.backtest.engine_kernel import (
    N_SCALARS,
    compiled_kernel,
    numba_available,
    simulate_path,
    simulate_path_fused,
)
from tradeforge.data.bundled import load_bundled_panel
from tradeforge.data.panel import BarPanel
from tradeforge.sim import CostConfig, MarketArrays, SimConfig
from tradeforge.sim import kernel as sim_kernel

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba is not installed")

CONFIGS = [
    *RICH_CONFIGS,
    SimConfig(costs=CostConfig(commission_bps=10)),  # the benchmark's costs
]


def _run_both(
    panel: BarPanel, w: np.ndarray, config: SimConfig, start: int, stop: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    market = MarketArrays.for_config(panel, config)
    stacked = sim_kernel.stack_for(market, config.fill_price)
    params = sim_kernel.pack_sim_params(config, market.frequency)
    n_dec, n = stop - start, panel.n_symbols
    results = []
    for fn in (simulate_path, simulate_path_fused):
        out = np.full((sim_kernel.N_OUT_ROWS, n_dec + 1, n), -1.0)
        shares = np.full((n_dec + 1, n), -1.0)
        scalars = np.full((N_SCALARS, n_dec + 1), -1.0)
        # strided views, as run_backtest passes them
        fn(
            w,
            stacked,
            start,
            stop,
            config.initial_cash,
            params,
            out[:, 1:],
            shares[1:],
            scalars[:, 1:],
        )
        results.append([out, shares, scalars])
    return results[0], results[1]


def _same_bits(ref: list[np.ndarray], got: list[np.ndarray]) -> None:
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_array_equal(a.view(np.int64), b.view(np.int64))


def test_run_backtest_uses_the_fused_loop() -> None:
    assert compiled_kernel() is simulate_path_fused


@pytest.mark.parametrize("config", CONFIGS)
def test_fused_equals_reference_on_real_data(equities_panel: BarPanel, config: SimConfig) -> None:
    w = random_weights(equities_panel, 7, config.allow_short)
    ref, got = _run_both(equities_panel, w, config, 30, equities_panel.n_bars - 1)
    _same_bits(ref, got)
    traded = ref[0][sim_kernel.OUT_TRADED]
    assert np.count_nonzero(traded) > 300  # it really traded


def test_fused_equals_reference_with_nan_and_flat_prices() -> None:
    panel = load_bundled_panel(["SP500", "WTI"])
    close = panel.close.copy()
    close[200:260, 0] = 55.0  # flat prices
    close[300:320, 1] = np.nan  # a gap
    open_ = panel.open.copy()
    open_[300:320, 1] = np.nan
    open_[200:260, 0] = 55.0
    edited = BarPanel(
        index=panel.index,
        symbols=panel.symbols,
        open=open_,
        high=np.fmax(panel.high, np.fmax(open_, close)),
        low=np.fmin(panel.low, np.fmin(open_, close)),
        close=close,
        volume=panel.volume,
    )
    config = CONFIGS[0]
    w = random_weights(edited, 11, True)
    ref, got = _run_both(edited, w, config, 25, 600)
    _same_bits(ref, got)
    assert np.isnan(ref[0][sim_kernel.OUT_FILL]).any()  # bars where an asset had no price


@pytest.mark.parametrize("config", [CONFIGS[0], CONFIGS[1]])
def test_fused_equals_reference_on_one_bar_and_all_nan_targets(
    equities_panel: BarPanel, config: SimConfig
) -> None:
    w = random_weights(equities_panel, 3, config.allow_short)
    _same_bits(*_run_both(equities_panel, w, config, 500, 501))  # one decision bar
    held = np.full_like(w, np.nan)
    held[100] = 0.3
    ref, got = _run_both(equities_panel, held, config, 100, 200)  # one trade, then held
    _same_bits(ref, got)
    assert np.count_nonzero(ref[0][sim_kernel.OUT_TRADED][1:]) > 0


def test_run_backtest_numba_matches_the_step_kernel(equities_panel: BarPanel) -> None:
    config = CONFIGS[0]
    w = random_weights(equities_panel, 5, True)
    a = run_backtest(equities_panel, w, config, start=50, end=900, kernel="step")
    b = run_backtest(equities_panel, w, config, start=50, end=900, kernel="numba")
    np.testing.assert_allclose(b.equity, a.equity, rtol=1e-12)
    np.testing.assert_allclose(b.costs, a.costs, rtol=1e-12, atol=1e-9)
