"""Simulator settings: cost rates (:class:`CostConfig`) and account/fill rules (:class:`SimConfig`).

All cost rates are non-negative. Basis points (bps) are 1/10,000 of notional. Annual rates are
turned into per-bar rates by dividing by the bars per year (simple, not compounded):
``SimConfig.periods_per_year`` when set, else derived from the data frequency and
``SimConfig.calendar`` (:mod:`tradeforge.sim.annualization`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import ConfigError
from tradeforge.sim.annualization import Calendar
from tradeforge.sim.annualization import periods_per_year as derive_periods_per_year

FillPrice = Literal["open", "close", "vwap"]

# Rates that ``CostConfig.scaled`` multiplies. ``participation_cap`` is a limit, not a rate;
# ``cash_rate_annual`` and ``short_rebate_annual`` are income, not costs: none of them is scaled.
_SCALED_RATES: tuple[str, ...] = (
    "commission_bps",
    "commission_per_share",
    "min_commission",
    "half_spread_bps",
    "slippage_bps",
    "slippage_vol_mult",
    "impact_coef",
    "borrow_bps_annual",
    "margin_spread_annual",
)

#: Default margin spread over the cash rate: 1.5 %/yr, about what a low-cost broker charges over
#: its benchmark rate on small balances (retail brokers charge several points more).
DEFAULT_MARGIN_SPREAD = 0.015


class CostConfig(FrozenConfig):
    """Trading and carrying costs. Every trading cost defaults to zero; borrowing cash does not:
    a levered account pays the cash rate plus a 1.5 %/yr margin spread by default.

    * ``commission_bps``: commission as bps of the filled notional.
    * ``commission_per_share``: commission per share (currency units per share).
    * ``min_commission``: minimum commission per order (per asset per bar with a non-zero fill).
    * ``half_spread_bps``: half the quoted spread, paid on each fill's notional, in bps.
    * ``slippage_bps``: fixed slippage in bps of notional.
    * ``slippage_vol_mult``: volatility-scaled slippage: ``mult * sigma`` as a fraction of
      notional, where ``sigma`` is the per-bar return volatility known at the decision bar.
    * ``impact_coef``: square-root market impact: the fraction of notional lost is
      ``impact_coef * sigma * sqrt(|shares| / ADV)``.
    * ``participation_cap``: at most ``participation_cap * ADV`` shares trade per asset per
      bar. 1.0 is the default.
    * ``borrow_bps_annual``: borrow fee on short notional, annual bps, charged per bar.
    * ``cash_rate_annual``: interest earned on free cash (cash beyond the collateral held
      against shorts), annual fraction (0.02 = 2 %/yr).
    * ``margin_spread_annual``: negative free cash (a loan: leverage above 1, or longs bought
      with short proceeds) pays ``cash_rate_annual + margin_spread_annual`` a year (the
      ``margin_rate_annual`` property). Default 0.015 (1.5 %/yr over the cash rate); 0 borrows
      at the cash rate.
    * ``short_rebate_annual``: interest earned on the cash collateral of shorts (the short
      sale's proceeds, valued at the mark), annual fraction. Default 0: most brokers keep it
      from retail accounts. The collateral never earns the cash rate.

    ADV is the trailing mean bar volume known at the decision bar (``SimConfig.adv_window``
    bars up to and including it), never the fill bar's own volume.
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
    margin_spread_annual: float = Field(default=DEFAULT_MARGIN_SPREAD, ge=0.0)
    short_rebate_annual: float = Field(default=0.0, ge=0.0)

    @property
    def margin_rate_annual(self) -> float:
        """The annual rate negative free cash pays: ``cash_rate_annual + margin_spread_annual``."""
        return self.cash_rate_annual + self.margin_spread_annual

    def scaled(self, k: float) -> CostConfig:
        """A copy with every cost rate multiplied by ``k`` (for cost-sensitivity studies).

        ``participation_cap``, ``cash_rate_annual`` and ``short_rebate_annual`` are left
        unchanged (so at ``k = 0`` cash is borrowed at the cash rate: a frictionless market).
        """
        if not k >= 0.0:
            raise ConfigError(f"CostConfig.scaled factor k = {k!r}; expected a number >= 0")
        update = {name: getattr(self, name) * k for name in _SCALED_RATES}
        return self.model_copy(update=update)

    @property
    def is_frictionless(self) -> bool:
        """True when no trading or carrying cost is configured (interest may still accrue, and
        a loan pays the cash rate)."""
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
    * ``periods_per_year``: bars per year for per-bar carry rates and annualised metrics; None
      (the default) derives it from the data frequency and ``calendar`` (see
      :meth:`periods_for`; 252 for daily equity bars).
    * ``calendar``: ``equity`` (252 days of 6.5 h), ``crypto`` (365 x 24 h) or ``fx``
      (260 x 24 h); only used to derive ``periods_per_year``.
    * ``vol_window``: bars of returns in the volatility that scales slippage and impact.
    * ``adv_window``: bars of volume averaged into the ADV that caps participation and scales
      impact (the bars up to and including the decision bar).
    * ``delay_bars``: latency. A target decided at close[t] is released to the market
      ``delay_bars`` bars later: sized at close[t + delay] and filled at bar t + 1 + delay.
      0 (the default) fills on the next bar.
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
    periods_per_year: int | None = Field(default=None, gt=0)
    calendar: Calendar = "equity"
    vol_window: int = Field(default=20, ge=2)
    adv_window: int = Field(default=20, ge=1)
    delay_bars: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check_finite(self) -> SimConfig:
        for name in ("initial_cash", "max_leverage", "max_position", "lot_size"):
            value = getattr(self, name)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(f"{name} = {value!r}; expected a finite number")
        return self

    def periods_for(self, frequency: str) -> int:
        """Bars per year: ``periods_per_year`` when set, else derived from ``frequency`` (e.g.
        ``BarPanel.frequency``) on ``calendar`` (``sim.annualization.periods_per_year``)."""
        if self.periods_per_year is not None:
            return self.periods_per_year
        return derive_periods_per_year(frequency, self.calendar)

    def resolved(self, periods_per_year: int) -> SimConfig:
        """This config with ``periods_per_year`` filled in where it is None (an explicit value
        is kept)."""
        if self.periods_per_year is not None:
            return self
        if not (isinstance(periods_per_year, int) and periods_per_year > 0):
            raise ConfigError(
                f"SimConfig.resolved periods_per_year = {periods_per_year!r}; expected an "
                "integer > 0"
            )
        return self.model_copy(update={"periods_per_year": int(periods_per_year)})

    def resolved_for(self, frequency: str) -> SimConfig:
        """``resolved(periods_for(frequency))``: the config a run on data at ``frequency`` uses."""
        return self.resolved(self.periods_for(frequency))


__all__ = ["DEFAULT_MARGIN_SPREAD", "CostConfig", "FillPrice", "SimConfig"]
