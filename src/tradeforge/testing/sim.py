"""Simulator settings shared by the tests that compare two implementations of the same rules."""

from __future__ import annotations

from tradeforge.sim import CostConfig

#: Every cost model switched on at once, at modest rates: parity and kernel-equality tests use it
#: so that no cost term can differ between two code paths unnoticed.
EVERY_COST = CostConfig(
    commission_bps=3,
    commission_per_share=0.002,
    min_commission=0.5,
    half_spread_bps=2,
    slippage_bps=1,
    slippage_vol_mult=0.1,
    impact_coef=0.2,
    borrow_bps_annual=50,
    cash_rate_annual=0.01,
    short_rebate_annual=0.002,
)

__all__ = ["EVERY_COST"]
