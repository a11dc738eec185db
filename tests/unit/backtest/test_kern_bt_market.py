"""The backtest's market arrays without the rolling volatility (``engine_kernel.path_market``)
give the same run as the full ``sim.kernel`` stack, bit for bit, whenever the costs do not scale
with volatility; with vol-scaled costs ``path_market`` is the full stack itself."""

from __future__ import annotations

import numpy as np
import pytest
from bt_helpers import RICH_CONFIGS, RICH_COSTS, random_weights

from tradeforge.backtest.engine import BacktestResult, run_backtest
from tradeforge.backtest.engine_kernel import (
    N_SCALARS,
    numba_available,
    path_market,
    simulate_path,
    simulate_path_fused,
    uses_volatility,
)
from tradeforge.core.errors import BacktestError
from tradeforge.data.bundled import load_bundled_panel
from tradeforge.data.panel import BarPanel
from tradeforge.sim import CostConfig, MarketArrays, SimConfig
from tradeforge.sim import kernel as sim_kernel

pytestmark = pytest.mark.skipif(not numba_available(), reason="numba is not installed")

NO_VOL = {"slippage_vol_mult": 0.0, "impact_coef": 0.0}
FLAT_COSTS = RICH_COSTS.model_copy(update=NO_VOL)  # every cost but the volatility-scaled ones
NO_VOL_CONFIGS = [
    SimConfig(costs=CostConfig(commission_bps=10)),  # the benchmark's costs
    *(c.model_copy(update={"costs": c.costs.model_copy(update=NO_VOL)}) for c in RICH_CONFIGS),
]


def _edited(panel: BarPanel, vwap: bool = False) -> BarPanel:
    """``panel`` with NaN gaps, a flat stretch, a zero-volume stretch and (optionally) a VWAP
    field with holes."""
    close, open_, volume = panel.close.copy(), panel.open.copy(), panel.volume.copy()
    close[200:260, 0] = open_[200:260, 0] = 55.0  # flat prices
    close[300:320, 1] = open_[300:320, 1] = np.nan  # a gap
    volume[400:430, 0] = 0.0
    volume[500:505, 1] = np.nan
    extra = {}
    if vwap:
        vw = (open_ + close) / 2.0
        vw[::7, 0] = np.nan  # the proxy fills these
        extra["vwap"] = vw
    return BarPanel(
        index=panel.index,
        symbols=panel.symbols,
        open=open_,
        high=np.fmax(panel.high, np.fmax(open_, close)),
        low=np.fmin(panel.low, np.fmin(open_, close)),
        close=close,
        volume=volume,
        extra=extra,
    )


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


def _same_result(a: BacktestResult, b: BacktestResult) -> None:
    for name in ("equity", "cash", "turnover", "costs", "weights", "positions"):
        x, y = getattr(a, name).to_numpy(), getattr(b, name).to_numpy()
        np.testing.assert_array_equal(_bits(x), _bits(y), err_msg=name)
    for name in ("traded", "fees", "fill_price"):
        x, y = getattr(a.records, name), getattr(b.records, name)
        np.testing.assert_array_equal(_bits(x), _bits(y), err_msg=name)


@pytest.mark.parametrize("fill", ["open", "close", "vwap"])
@pytest.mark.parametrize("with_vwap", [False, True])
def test_rows_equal_the_full_stack(fill: str, with_vwap: bool) -> None:
    panel = _edited(load_bundled_panel(["SP500", "WTI"]), vwap=with_vwap)
    config = SimConfig(fill_price=fill, adv_window=15)
    args = (panel.open, panel.high, panel.low, panel.close, panel.volume, panel.extra.get("vwap"))
    full = sim_kernel.market_stack(*args, config.fill_price, config.vol_window, config.adv_window)
    got = path_market(*args, config)
    assert not uses_volatility(config)
    for row in (sim_kernel.M_MARK, sim_kernel.M_FILL, sim_kernel.M_ADV):
        np.testing.assert_array_equal(_bits(got[row]), _bits(full[row]), err_msg=str(row))
    assert got.shape == (3, *full.shape[1:])  # no volatility row to write and read
    assert np.isnan(full[sim_kernel.M_ADV]).any()  # the comparison covers missing volumes
    assert np.isfinite(full[sim_kernel.M_SIGMA][30:]).any()  # what the full stack computed


def test_vol_scaled_costs_get_the_full_stack() -> None:
    panel = load_bundled_panel(["AAPL", "IBM"])
    for costs in (CostConfig(slippage_vol_mult=0.1), CostConfig(impact_coef=0.2)):
        config = SimConfig(costs=costs, vol_window=10)
        assert uses_volatility(config)
        args = (panel.open, panel.high, panel.low, panel.close, panel.volume, None)
        full = sim_kernel.market_stack(*args, "open", 10, config.adv_window)
        np.testing.assert_array_equal(_bits(path_market(*args, config)), _bits(full))


@pytest.mark.parametrize("config", NO_VOL_CONFIGS)
def test_run_backtest_equals_the_run_on_the_full_market(config: SimConfig) -> None:
    """``run_backtest`` without ``market`` (``path_market``, sigma not computed) against the run
    given ``MarketArrays.for_config`` (the full stack with the real volatility)."""
    panel = _edited(load_bundled_panel(["AAPL", "IBM", "MSFT"]), vwap=True)
    w = random_weights(panel, 4, allow_short=True)
    market = MarketArrays.for_config(panel, config)
    got = run_backtest(panel, w, config, start=30, end=1500)
    ref = run_backtest(panel, w, config, start=30, end=1500, market=market)
    _same_result(got, ref)
    assert np.count_nonzero(got.records.traded) > 300  # it really traded
    assert got.costs["slippage"].sum() > 0 or config.costs.slippage_bps == 0


def test_run_backtest_equals_full_market_on_flat_prices_and_one_bar() -> None:
    panel = load_bundled_panel(["SP500", "WTI"])
    flat = BarPanel(
        index=panel.index,
        symbols=panel.symbols,
        open=np.full_like(panel.open, 42.0),
        high=np.full_like(panel.open, 42.0),
        low=np.full_like(panel.open, 42.0),
        close=np.full_like(panel.open, 42.0),
        volume=panel.volume,
    )
    config = NO_VOL_CONFIGS[1]
    w = random_weights(flat, 9, allow_short=True)
    for p, (start, end) in ((flat, (10, 400)), (panel, (500, 502)), (flat, (0, 2))):
        market = MarketArrays.for_config(p, config)
        got = run_backtest(p, w, config, start=start, end=end)
        ref = run_backtest(p, w, config, start=start, end=end, market=market)
        _same_result(got, ref)
        assert len(got.equity) == end - start


def test_fused_loop_skips_sigma_only_where_it_cannot_matter() -> None:
    """Without vol-scaled costs the fused loop's output does not depend on the volatility row
    (garbage there changes nothing, and equals the reference loop that reads it); with them it
    does."""
    panel = load_bundled_panel(["AAPL", "IBM", "MSFT"])
    w = random_weights(panel, 2, allow_short=True)
    base = MarketArrays.for_config(panel, NO_VOL_CONFIGS[1])
    stacked = sim_kernel.stack_for(base, "open")
    noisy = stacked.copy()
    rng = np.random.default_rng(0)
    noisy[sim_kernel.M_SIGMA] = rng.choice([np.nan, np.inf, 0.5, 3.0], size=noisy.shape[1:])

    def run(fn: object, market: np.ndarray, config: SimConfig) -> list[np.ndarray]:
        n_dec = 1200
        out = np.zeros((sim_kernel.N_OUT_ROWS, n_dec, panel.n_symbols))
        shares = np.zeros((n_dec, panel.n_symbols))
        scalars = np.zeros((N_SCALARS, n_dec))
        params = sim_kernel.pack_sim_params(config, panel.frequency)
        fn(w, market, 40, 40 + n_dec, config.initial_cash, params, out, shares, scalars)  # type: ignore[operator]
        return [out, shares, scalars]

    config = NO_VOL_CONFIGS[1]
    ref = run(simulate_path, stacked, config)
    for market in (stacked, noisy):
        for a, b in zip(ref, run(simulate_path_fused, market, config), strict=True):
            np.testing.assert_array_equal(_bits(a), _bits(b))
    three = np.ascontiguousarray(stacked[: sim_kernel.M_SIGMA])  # path_market's shape
    for a, b in zip(ref, run(simulate_path_fused, three, config), strict=True):
        np.testing.assert_array_equal(_bits(a), _bits(b))
    vol = config.model_copy(update={"costs": FLAT_COSTS.model_copy(update={"impact_coef": 0.3})})
    clean = run(simulate_path_fused, stacked, vol)
    dirty = run(simulate_path_fused, noisy, vol)
    assert not np.array_equal(clean[0], dirty[0], equal_nan=True)
    with pytest.raises(BacktestError, match="no volatility"):
        run(simulate_path_fused, three, vol)


def test_path_market_rejects_mismatched_fields() -> None:
    close = np.ones((10, 2))
    with pytest.raises(BacktestError, match="'volume' has shape"):
        path_market(close, close, close, close, np.ones((9, 2)), None, SimConfig())
    with pytest.raises(BacktestError, match="'close' has 1 dims"):
        path_market(close, close, close, np.ones(10), close, None, SimConfig())
