"""Setup shared by the backtest engine tests (test_engine.py, test_kern_backtest.py): every cost
switched on, the three simulator configs that exercise shorts, lots and fill prices, and random
target weights with held assets and held rows."""

from __future__ import annotations

import numpy as np

from tradeforge.data.panel import BarPanel
from tradeforge.sim import CostConfig, SimConfig

RICH_COSTS = CostConfig(
    commission_bps=5,
    commission_per_share=0.001,
    min_commission=1.0,
    half_spread_bps=2,
    slippage_bps=1,
    slippage_vol_mult=0.2,
    impact_coef=0.3,
    participation_cap=0.05,
    borrow_bps_annual=40,
    cash_rate_annual=0.02,
    short_rebate_annual=0.005,
)

RICH_CONFIGS = [
    SimConfig(costs=RICH_COSTS, allow_short=True, max_leverage=1.5, max_position=0.5),
    SimConfig(costs=RICH_COSTS, fractional=False, lot_size=10, fill_price="vwap"),
    SimConfig(
        costs=RICH_COSTS.scaled(3), fill_price="close", min_trade_value=5_000, initial_cash=1e5
    ),
]


def random_weights(panel: BarPanel, seed: int, allow_short: bool) -> np.ndarray:
    """Uniform targets in [-0.6 or -0.1, 0.6); 30% of cells and 10% of whole rows are NaN (held)."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-0.6 if allow_short else -0.1, 0.6, (panel.n_bars, panel.n_symbols))
    w[rng.random(w.shape) < 0.3] = np.nan  # held assets
    w[rng.random(panel.n_bars) < 0.1] = np.nan  # held rows
    return w
