"""Cost models: commission, half-spread, slippage, square-root market impact, and carry.

Every trade-cost function works on arrays of any matching shape, returns cash amounts >= 0 and
charges nothing where nothing traded. ``traded`` is signed shares, ``price`` the fill price,
``sigma`` the per-bar return volatility known at the decision bar (NaN counts as 0) and ``adv``
the trailing average bar volume known at the decision bar (``MarketArrays.adv``; NaN or <= 0
means unknown: no impact is charged then). Nothing here reads the fill bar's own volume.

Carry (:func:`carry_costs`) splits cash into the collateral of the shorts (their value at the
mark) and free cash (the rest): the collateral earns ``short_rebate_annual``, positive free cash
earns ``cash_rate_annual``, negative free cash (a loan) pays ``margin_rate_annual``, and short
notional pays ``borrow_bps_annual``.
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


class CarryCosts(NamedTuple):
    """One bar of carry per batch row, each (B,) and >= 0: ``borrow`` and ``margin`` are
    charges, ``interest`` (cash interest plus the short rebate) is income."""

    borrow: FloatArray
    margin: FloatArray
    interest: FloatArray


def impact_fraction(
    traded: FloatArray, sigma: FloatArray, adv: FloatArray, impact_coef: float
) -> FloatArray:
    """Square-root law: ``impact_coef * sigma * sqrt(|shares| / adv)`` (0 if adv unknown)."""
    ok = np.isfinite(adv) & (adv > 0.0)
    safe_adv = np.where(ok, adv, 1.0)
    frac = impact_coef * np.sqrt(np.abs(traded) / safe_adv) * sigma
    out: FloatArray = np.where(ok, frac, 0.0)
    return out


def trade_costs(
    traded: FloatArray,
    price: FloatArray,
    sigma: FloatArray,
    adv: FloatArray,
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
        impact = notional * impact_fraction(traded, sig, adv, costs.impact_coef)
    else:
        impact = np.zeros_like(notional)
    return TradeCosts(
        commission=commission(traded, notional, costs),
        spread=spread,
        slippage=slippage,
        impact=impact,
    )


def per_bar_rates(costs: CostConfig, periods_per_year: int) -> tuple[float, float, float, float]:
    """``(borrow, margin, cash, rebate)`` rates per bar: annual rates / ``periods_per_year``.

    The compiled kernel packs the same numbers (``sim.kernel.pack_sim_params``).
    """
    return (
        costs.borrow_bps_annual * BPS / periods_per_year,
        costs.margin_rate_annual / periods_per_year,
        costs.cash_rate_annual / periods_per_year,
        costs.short_rebate_annual / periods_per_year,
    )


def carry_costs(
    shares: FloatArray,
    mark: FloatArray,
    cash: FloatArray,
    costs: CostConfig,
    periods_per_year: int,
) -> CarryCosts:
    """Borrow fee, margin interest and interest income for one bar (module docstring).

    ``shares``/``mark`` are (B, N) holdings and prices after the fill; ``cash`` is (B,) after the
    fill. With ``S`` the short value at the mark and ``F = cash - S`` the free cash:
    ``borrow = S * borrow_rate``, ``margin = max(-F, 0) * margin_rate``,
    ``interest = max(F, 0) * cash_rate + S * rebate_rate`` (all per bar).
    """
    borrow_rate, margin_rate, cash_rate, rebate_rate = per_bar_rates(costs, periods_per_year)
    with np.errstate(invalid="ignore"):
        short_value = np.where(shares < 0.0, -shares * mark, 0.0).sum(axis=1)
    free = cash - short_value
    borrow: FloatArray = short_value * borrow_rate
    margin: FloatArray = np.maximum(-free, 0.0) * margin_rate
    interest: FloatArray = np.maximum(free, 0.0) * cash_rate + short_value * rebate_rate
    return CarryCosts(borrow=borrow, margin=margin, interest=interest)


__all__ = [
    "BPS",
    "CarryCosts",
    "TradeCosts",
    "carry_costs",
    "commission",
    "impact_fraction",
    "per_bar_rates",
    "trade_costs",
]
