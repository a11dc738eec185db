"""Simulator settings: cost rates (:class:`CostConfig`) and account/fill rules (:class:`SimConfig`).

All cost rates are non-negative. Basis points (bps) are 1/10,000 of notional. Annual rates are
turned into per-bar rates by dividing by ``SimConfig.periods_per_year`` (simple, not compounded).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import ConfigError

FillPrice = Literal["open", "close", "vwap"]

# Rates that ``CostConfig.scaled`` multiplies. ``participation_cap`` is a limit, not a rate, and
# ``cash_rate_annual`` is income, not a cost, so neither is scaled.
_SCALED_RATES: tuple[str, ...] = (
    "commission_bps",
    "commission_per_share",
    "min_commission",
    "half_spread_bps",
    "slippage_bps",
    "slippage_vol_mult",
    "impact_coef",
    "borrow_bps_annual",
)


class CostConfig(FrozenConfig):
    """Trading and carrying costs; every field defaults to zero (a frictionless market).

    * ``commission_bps``: commission as bps of the filled notional.
    * ``commission_per_share``: commission per share (currency units per share).
    * ``min_commission``: minimum commission per order (per asset per bar with a non-zero fill).
    * ``half_spread_bps``: half the quoted spread, paid on each fill's notional, in bps.
    * ``slippage_bps``: fixed slippage in bps of notional.
    * ``slippage_vol_mult``: volatility-scaled slippage: ``mult * sigma`` as a fraction of
      notional, where ``sigma`` is the per-bar return volatility known at the decision bar.
    * ``impact_coef``: square-root market impact: the fraction of notional lost is
      ``impact_coef * sigma * sqrt(|shares| / volume of the fill bar)``.
    * ``participation_cap``: at most ``participation_cap * volume`` shares trade per asset per
      bar (volume of the fill bar). 1.0 is the default.
    * ``borrow_bps_annual``: borrow fee on short notional, annual bps, charged per bar.
    * ``cash_rate_annual``: interest earned on positive cash, annual fraction (0.02 = 2%/yr).
    """

    commission_bps: float = Field(default=0.0, ge=0.0)
    commission_per_share: float = Field(default=0.0, ge=0.0)
    min_commission: float = Field(default=0.0, ge=0.0)
    half_spread_bps: float = Field(default=0.0, ge=0.0)
    slippage_bps: float = Field(default=0.0, ge=0.0)
    slippage_vol_mult: float = Field(default=0.0, ge=0.0)
    impact_coef: float = Field(default=0.0, ge=0.0)
    participation_cap: float = Field(default=1.0, gt=0.0)
    borrow_bps_annual: float = Field(default=0.0, ge=0.0)
    cash_rate_annual: float = Field(default=0.0, ge=0.0)

    def scaled(self, k: float) -> CostConfig:
        """A copy with every cost rate multiplied by ``k`` (for cost-sensitivity studies).

        ``participation_cap`` and ``cash_rate_annual`` are left unchanged.
        """
        if not k >= 0.0:
            raise ConfigError(f"CostConfig.scaled factor k = {k!r}; expected a number >= 0")
        update = {name: getattr(self, name) * k for name in _SCALED_RATES}
        return self.model_copy(update=update)

    @property
    def is_frictionless(self) -> bool:
        """True when no trading or carrying cost is configured (interest may still accrue)."""
        return all(getattr(self, name) == 0.0 for name in _SCALED_RATES)


class SimConfig(FrozenConfig):
    """How targets become fills and how the account is kept.

    * ``fill_price``: the price of the bar AFTER the decision bar at which orders fill:
      its ``open`` (default), its ``close``, or its ``vwap`` (a real VWAP field where the data has
      one, else the proxy (O+H+L+C)/4).
    * ``allow_short``: if False, negative targets are clipped to 0.
    * ``max_position``: absolute target weight per asset is clipped to this.
    * ``max_leverage``: if the gross target weight (sum of |w|) exceeds this, the explicit targets
      are scaled down proportionally so that it does not.
    * ``fractional``: fractional shares; if False, holdings are multiples of ``lot_size``.
    * ``lot_size``: trading unit when ``fractional`` is False (ignored otherwise).
    * ``min_trade_value``: trades whose notional at the decision price is below this are skipped
      (avoids paying ``min_commission`` on tiny rebalances); 0 skips only exact-zero trades.
    """

    costs: CostConfig = Field(default_factory=CostConfig)
    fill_price: FillPrice = "open"
    initial_cash: float = Field(default=1_000_000.0, gt=0.0)
    allow_short: bool = False
    max_leverage: float = Field(default=1.0, gt=0.0)
    max_position: float = Field(default=1.0, gt=0.0)
    fractional: bool = True
    lot_size: float = Field(default=1.0, gt=0.0)
    min_trade_value: float = Field(default=0.0, ge=0.0)
    periods_per_year: int = Field(default=252, gt=0)
    vol_window: int = Field(default=20, ge=2)

    @model_validator(mode="after")
    def _check_finite(self) -> SimConfig:
        for name in ("initial_cash", "max_leverage", "max_position", "lot_size"):
            value = getattr(self, name)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(f"{name} = {value!r}; expected a finite number")
        return self


__all__ = ["CostConfig", "FillPrice", "SimConfig"]
