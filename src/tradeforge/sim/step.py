"""One simulator step for B accounts: target weights decided at close[t] -> fills at bar t+1.

Order of events for each batch row with decision bar ``t`` (``t`` may differ per row):

1. ``prev_equity`` = cash + shares * mark[t] (mark = last known close at or before t).
2. Targets are cleaned: NaN = hold that asset (no order); others are clipped to
   ``[0, max_position]`` (long only) or ``[-max_position, max_position]``; if the gross weight
   (explicit targets plus the current weights of held assets) exceeds ``max_leverage``, the
   explicit targets are scaled down so that it does not (held assets are never traded by it).
3. Target shares = w * max(prev_equity, 0) / mark[t] (sized with prices known at t); rounded
   toward zero to multiples of ``lot_size`` when ``fractional`` is False.
4. Orders below ``min_trade_value`` (at mark[t]) are dropped. An asset whose fill price at t+1
   is NaN or <= 0 does not trade. Traded shares are capped at ``participation_cap * adv[t]``
   (the trailing average volume known at the decision bar, ``MarketArrays.adv``; rounded down
   to lots); where that ADV is NaN or <= 0 there is no cap if ``participation_cap >= 1`` and no
   trade otherwise.
5. Fills at ``fill_prices[t+1]`` (open, close or vwap of bar t+1). Cash pays
   ``traded * fill_price`` plus commission, spread, slippage and impact (``sim.costs``; impact
   also reads ``adv[t]``, never the fill bar's volume).
6. Carry for the bar (``sim.costs.carry_costs``), with S the short value at mark[t+1] and
   F = cash - S the free cash: borrow fee on S, margin interest on a negative F (leverage pays
   ``margin_rate_annual``), interest on a positive F and the short rebate on S. Rates are per
   bar: annual / ``config.periods_for(market.frequency)``.
7. ``equity`` = cash + shares * mark[t+1]; ``weights`` = shares * mark[t+1] / equity.

Hence exactly: equity = prev_equity + shares_before * (mark[t+1] - mark[t])
+ traded * (mark[t+1] - fill_price) - trade costs - borrow - margin + interest.

Cash may go negative (price gap between sizing and fill, costs, leverage > 1): that loan pays
margin interest. A position in an asset that stops trading is held at its last known close until
the asset trades again. Latency (``SimConfig.delay_bars``) is applied in front of this step by
the callers (``sim.latency``): the step always fills what it is given at the next bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tradeforge.core.errors import SimulationError
from tradeforge.core.types import BoolArray, FloatArray, IntArray
from tradeforge.sim.config import SimConfig
from tradeforge.sim.costs import carry_costs, trade_costs
from tradeforge.sim.market import MarketArrays
from tradeforge.sim.state import AccountState

_ROUND_EPS = 1e-9  # lots: 99.9999999999 lots (float noise) rounds to 100, never 99


@dataclass(frozen=True, eq=False)
class StepResult:
    """What one step did, per batch row (cash amounts; every cost >= 0, interest is income)."""

    equity: FloatArray  # (B,) at close[t+1], after all costs
    prev_equity: FloatArray  # (B,) at close[t], before the step
    traded_shares: FloatArray  # (B, N) signed
    fill_price: FloatArray  # (B, N) reference fill price at bar t+1 (NaN where untradable)
    commission: FloatArray  # (B, N)
    spread: FloatArray  # (B, N)
    slippage: FloatArray  # (B, N)
    impact: FloatArray  # (B, N)
    borrow: FloatArray  # (B,)
    margin: FloatArray  # (B,) interest paid on negative free cash
    interest: FloatArray  # (B,) income: on positive free cash, plus the short rebate
    weights: FloatArray  # (B, N) held after the fill, at close[t+1]

    @property
    def trade_costs(self) -> FloatArray:
        """(B,) commission + spread + slippage + impact."""
        out: FloatArray = (self.commission + self.spread + self.slippage + self.impact).sum(axis=1)
        return out

    @property
    def total_costs(self) -> FloatArray:
        """(B,) trade costs + borrow + margin (interest is income, not netted here)."""
        out: FloatArray = self.trade_costs + self.borrow + self.margin
        return out


def as_time_index(t: int | IntArray, n_batch: int, n_bars: int) -> IntArray:
    """``t`` as a (B,) int64 array, checked to leave a bar t+1 to fill on."""
    arr = np.asarray(t)
    if arr.dtype.kind not in "iu":
        raise SimulationError(f"t has dtype {arr.dtype}; expected an integer or integer array")
    tt: IntArray = np.broadcast_to(arr.astype(np.int64), (n_batch,)) if arr.ndim == 0 else arr
    if tt.shape != (n_batch,):
        raise SimulationError(f"t has shape {arr.shape}; expected () or ({n_batch},)")
    if tt.size and (int(tt.min()) < 0 or int(tt.max()) >= n_bars - 1):
        raise SimulationError(
            f"t in [{int(tt.min())}, {int(tt.max())}]; expected 0 <= t <= {n_bars - 2} "
            "(a fill needs bar t+1)"
        )
    return tt.astype(np.int64, copy=False)


def clip_targets(
    weights: FloatArray, current: FloatArray, config: SimConfig
) -> tuple[FloatArray, BoolArray]:
    """Apply the position and leverage limits (module docstring, item 2).

    Returns the cleaned (B, N) weights (held assets carry their current weight) and the (B, N)
    hold mask (True where the target was NaN).
    """
    hold = np.isnan(weights)
    lower = -config.max_position if config.allow_short else 0.0
    explicit = np.clip(np.where(hold, 0.0, weights), lower, config.max_position)
    held_current = np.where(hold, current, 0.0)
    explicit_gross = np.abs(explicit).sum(axis=1)
    room = np.maximum(config.max_leverage - np.abs(held_current).sum(axis=1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = np.where(explicit_gross > room, room / explicit_gross, 1.0)
    cleaned: FloatArray = explicit * scale[:, None] + held_current
    return cleaned, hold


def _round_lots(shares: FloatArray, lot: float) -> FloatArray:
    lots = shares / lot
    out: FloatArray = np.trunc(lots + np.sign(lots) * _ROUND_EPS) * lot
    return out


def step(
    state: AccountState,
    target_weights: FloatArray,
    market: MarketArrays,
    t: int | IntArray,
    config: SimConfig,
) -> tuple[AccountState, StepResult]:
    """Move every account from close[t] to close[t+1] given targets decided at close[t].

    ``target_weights`` is (B, N) or (N,) (same targets for every row); NaN entries hold.
    Pure: the inputs are not modified.
    """
    cash, shares = state.cash, state.shares
    n_batch, n_assets = shares.shape
    if n_assets != market.n_assets:
        raise SimulationError(
            f"state has {n_assets} assets but the market has {market.n_assets}; expected equal"
        )
    w = np.asarray(target_weights, dtype=np.float64)
    if w.shape == (n_assets,):
        w = np.broadcast_to(w, shares.shape)
    if w.shape != shares.shape:
        raise SimulationError(
            f"target_weights have shape {w.shape}; expected {shares.shape} or ({n_assets},)"
        )
    if np.isinf(w).any():
        raise SimulationError("target_weights contain +/-inf; expected finite weights or NaN")
    tt = as_time_index(t, n_batch, market.n_bars)
    # NaN prices of assets not (yet) trading flow through ``where`` masks below: silence the
    # invalid/divide warnings once for the whole step instead of per operation.
    with np.errstate(divide="ignore", invalid="ignore"):
        return _step(cash, shares, w, market, tt, config)


def _held(shares: FloatArray, prices: FloatArray) -> FloatArray:
    """``holding_values`` without its own errstate (``_step`` runs inside one)."""
    out: FloatArray = np.where(shares != 0.0, shares * prices, 0.0)
    return out


def _step(
    cash: FloatArray,
    shares: FloatArray,
    w: FloatArray,
    market: MarketArrays,
    tt: IntArray,
    config: SimConfig,
) -> tuple[AccountState, StepResult]:
    t1 = tt + 1
    costs = config.costs

    mark0 = market.mark[tt]
    mark1 = market.mark[t1]
    price = market.fill_prices(config.fill_price)[t1]
    adv = market.adv[tt]
    sigma = market.volatility[tt]

    held0 = _held(shares, mark0)
    prev_equity = cash + held0.sum(axis=1)
    sizing_equity = np.maximum(prev_equity, 0.0)
    sizing_col = sizing_equity[:, None]
    current_w = np.where(sizing_col > 0.0, held0 / sizing_col, 0.0)
    cleaned, hold = clip_targets(w, current_w, config)
    target = cleaned * sizing_col / mark0
    if not config.fractional:
        target = _round_lots(target, config.lot_size)
    keep = hold | ~np.isfinite(target)  # held, or no known price at t to size with
    desired = np.where(keep, 0.0, target - shares)
    if config.min_trade_value > 0.0:
        small = np.abs(desired) * np.where(np.isfinite(mark0), mark0, 0.0)
        desired = np.where(small < config.min_trade_value, 0.0, desired)

    tradable = np.isfinite(price) & (price > 0.0)
    adv_ok = np.isfinite(adv) & (adv > 0.0)
    no_volume_limit = np.inf if costs.participation_cap >= 1.0 else 0.0
    limit = np.where(adv_ok, costs.participation_cap * np.where(adv_ok, adv, 0.0), no_volume_limit)
    if not config.fractional:
        limit = np.floor(limit / config.lot_size) * config.lot_size
    traded = np.sign(desired) * np.minimum(np.abs(desired), limit)
    traded = np.where(tradable, traded, 0.0)

    paid_price = np.where(traded != 0.0, price, 0.0)
    fees = trade_costs(traded, paid_price, sigma, adv, costs)
    fee_total = (fees.commission + fees.spread + fees.slippage + fees.impact).sum(axis=1)
    new_shares = shares + traded
    new_cash = cash - (traded * paid_price).sum(axis=1) - fee_total
    carry = carry_costs(new_shares, mark1, new_cash, costs, config.periods_for(market.frequency))
    new_cash = new_cash - carry.borrow - carry.margin + carry.interest

    held_value = _held(new_shares, mark1)
    new_equity = new_cash + held_value.sum(axis=1)
    weights = np.where(new_equity[:, None] != 0.0, held_value / new_equity[:, None], 0.0)

    result = StepResult(
        equity=new_equity,
        prev_equity=prev_equity,
        traded_shares=traded,
        fill_price=np.where(tradable, price, np.nan),
        commission=fees.commission,
        spread=fees.spread,
        slippage=fees.slippage,
        impact=fees.impact,
        borrow=carry.borrow,
        margin=carry.margin,
        interest=carry.interest,
        weights=weights,
    )
    return AccountState(cash=new_cash, shares=new_shares), result


__all__ = ["StepResult", "as_time_index", "clip_targets", "step"]
