"""Cost models: commission, half-spread, slippage and square-root market impact.

Every function works on arrays of any matching shape, returns cash amounts >= 0 and charges
nothing where nothing traded. ``traded`` is signed shares, ``price`` the fill price, ``sigma``
the per-bar return volatility known at the decision bar (NaN counts as 0) and ``volume`` the
fill bar's volume (NaN or <= 0 means unknown: no impact is charged then).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tradeforge.core.types import FloatArray
from tradeforge.sim.config import CostConfig

BPS = 1e-4


class TradeCosts(NamedTuple):
    """Per-fill cash costs, each the shape of the traded-shares array."""

    commission: FloatArray
    spread: FloatArray
    slippage: FloatArray
    impact: FloatArray


def commission(traded: FloatArray, notional: FloatArray, costs: CostConfig) -> FloatArray:
    """``bps * notional + per_share * |shares|``, at least ``min_commission`` per non-zero fill."""
    fee = notional * (costs.commission_bps * BPS) + np.abs(traded) * costs.commission_per_share
    if costs.min_commission > 0.0:
        fee = np.maximum(fee, costs.min_commission)
    out: FloatArray = np.where(traded != 0.0, fee, 0.0)
    return out


def impact_fraction(
    traded: FloatArray, sigma: FloatArray, volume: FloatArray, impact_coef: float
) -> FloatArray:
    """Square-root law: ``impact_coef * sigma * sqrt(|shares| / volume)`` (0 if volume unknown)."""
    ok = np.isfinite(volume) & (volume > 0.0)
    safe_volume = np.where(ok, volume, 1.0)
    frac = impact_coef * np.sqrt(np.abs(traded) / safe_volume) * sigma
    out: FloatArray = np.where(ok, frac, 0.0)
    return out


def trade_costs(
    traded: FloatArray,
    price: FloatArray,
    sigma: FloatArray,
    volume: FloatArray,
    costs: CostConfig,
) -> TradeCosts:
    """All four per-fill costs for signed ``traded`` shares filled at ``price``."""
    filled = traded != 0.0
    notional = np.where(filled, np.abs(traded) * np.where(filled, price, 0.0), 0.0)
    # zero-rate terms skip their arithmetic (each field is still its own array)
    if costs.half_spread_bps:
        spread = notional * (costs.half_spread_bps * BPS)
    else:
        spread = np.zeros_like(notional)
    uses_sigma = costs.slippage_vol_mult > 0.0 or costs.impact_coef > 0.0
    sig = np.where(np.isfinite(sigma), sigma, 0.0) if uses_sigma else sigma
    if costs.slippage_vol_mult:
        slippage = notional * (costs.slippage_bps * BPS + costs.slippage_vol_mult * sig)
    elif costs.slippage_bps:
        slippage = notional * (costs.slippage_bps * BPS)
    else:
        slippage = np.zeros_like(notional)
    if costs.impact_coef > 0.0:
        impact = notional * impact_fraction(traded, sig, volume, costs.impact_coef)
    else:
        impact = np.zeros_like(notional)
    return TradeCosts(
        commission=commission(traded, notional, costs),
        spread=spread,
        slippage=slippage,
        impact=impact,
    )


def carry_costs(
    shares: FloatArray,
    mark: FloatArray,
    cash: FloatArray,
    costs: CostConfig,
    periods_per_year: int,
) -> tuple[FloatArray, FloatArray]:
    """Borrow fee on short notional and interest on positive cash for one bar, both (B,) >= 0.

    ``shares``/``mark`` are (B, N) holdings and prices after the fill; ``cash`` is (B,) after the
    fill. Borrow is a cost; interest is income (returned as a positive amount).
    """
    with np.errstate(invalid="ignore"):
        short_value = np.where(shares < 0.0, -shares * mark, 0.0).sum(axis=1)
    borrow: FloatArray = short_value * (costs.borrow_bps_annual * BPS / periods_per_year)
    interest: FloatArray = np.maximum(cash, 0.0) * (costs.cash_rate_annual / periods_per_year)
    return borrow, interest


__all__ = ["BPS", "TradeCosts", "carry_costs", "commission", "impact_fraction", "trade_costs"]
