"""Tiny deterministic inputs for environment tests: synthetic bar panels and simple features.

Only tests and benchmarks use these; production code never imports ``tradeforge.testing``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradeforge.data.panel import BarPanel
from tradeforge.features.panel import FeaturePanel

SIMPLE_FEATURES: tuple[str, ...] = ("ret_1", "ret_5", "range")


def synthetic_panel(
    n_bars: int = 300,
    n_assets: int = 1,
    seed: int = 0,
    drift: float = 0.0003,
    vol: float = 0.01,
    start: str = "2020-01-01",
) -> BarPanel:
    """Daily OHLCV bars of ``n_assets`` random walks (seeded, hence identical on every call)."""
    rng = np.random.default_rng(seed)
    rets = drift + vol * rng.standard_normal((n_bars, n_assets))
    close = 100.0 * np.exp(np.cumsum(rets, axis=0))
    prev = np.vstack([close[:1], close[:-1]])
    open_ = prev * np.exp(0.3 * vol * rng.standard_normal((n_bars, n_assets)))
    high = np.maximum(open_, close) * (1.0 + 0.5 * vol * rng.random((n_bars, n_assets)))
    low = np.minimum(open_, close) * (1.0 - 0.5 * vol * rng.random((n_bars, n_assets)))
    volume = 1e6 * (1.0 + rng.random((n_bars, n_assets)))
    index = pd.date_range(start, periods=n_bars, freq="D", tz="UTC")
    symbols = tuple(f"A{j}" for j in range(n_assets)) if n_assets > 1 else ("A0",)
    return BarPanel(index, symbols, open_, high, low, close, volume)


def simple_features(panel: BarPanel) -> FeaturePanel:
    """Three causal features per asset: 1-bar and 5-bar log returns and the bar's range.

    The first 5 bars are NaN (warm-up), as a real pipeline's would be.
    """
    close = panel.close
    logc = np.log(close)
    ret1 = np.full_like(close, np.nan)
    ret1[1:] = logc[1:] - logc[:-1]
    ret5 = np.full_like(close, np.nan)
    ret5[5:] = logc[5:] - logc[:-5]
    rng = (panel.high - panel.low) / close
    rng[:5] = np.nan
    values = np.stack([ret1, ret5, rng], axis=2)
    return FeaturePanel(panel.index, panel.symbols, SIMPLE_FEATURES, values)


def with_nan(features: FeaturePanel, bar: int, symbol: int, feature: int) -> FeaturePanel:
    """A copy of ``features`` with one NaN punched in (to test NaN detection)."""
    values = features.values.copy()
    values[bar, symbol, feature] = np.nan
    return FeaturePanel(features.index, features.symbols, features.names, values)


__all__ = ["SIMPLE_FEATURES", "simple_features", "synthetic_panel", "with_nan"]
