"""A compiled single-account path kernel that repeats ``tradeforge.sim.step`` bar by bar.

``simulate_path`` performs, for one account, exactly the operations of ``sim.step`` (same order
of rules, same formulas; see ``tradeforge.sim.step``) over a whole range of decision bars in one
compiled loop. It is used by ``run_backtest`` when numba is installed (``kernel="auto"`` or
``"numba"``); tests check it against a loop over ``sim.step`` (equal to float rounding of the
sums over assets: a sequential sum here, a pairwise one in numpy).

The kernel is plain Python over scalars and is compiled lazily on first use (numba imported
inside ``compiled_kernel``; nothing is compiled on import).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from tradeforge.core.types import FloatArray
from tradeforge.sim import SimConfig
from tradeforge.sim.costs import BPS

_ROUND_EPS = 1e-9  # the same tolerance as sim.step's lot rounding


def simulate_path(
    weights: FloatArray,
    mark: FloatArray,
    fill: FloatArray,
    volume: FloatArray,
    sigma: FloatArray,
    start: int,
    stop: int,
    cash0: float,
    params: FloatArray,
    out_shares: FloatArray,
    out_traded: FloatArray,
    out_fees: FloatArray,
    out_scalars: FloatArray,
) -> None:
    """Run decision bars ``t = start .. stop-1`` (fills at t+1) for one account.

    ``params`` packs the config (see ``pack_params``). Writes, for row ``i = t - start``:
    ``out_shares[i]`` shares after the fill, ``out_traded[i]`` signed traded shares,
    ``out_fees[k, i]`` for k = commission, spread, slippage, impact, and ``out_scalars[k, i]``
    for k = prev_equity, equity, cash, borrow, interest.
    """
    allow_short = params[0] > 0.0
    max_pos = params[1]
    max_lev = params[2]
    fractional = params[3] > 0.0
    lot = params[4]
    min_trade = params[5]
    comm_bps = params[6]
    comm_share = params[7]
    min_comm = params[8]
    half_spread = params[9]
    slip_bps = params[10]
    slip_vol = params[11]
    impact_coef = params[12]
    cap = params[13]
    borrow_rate = params[14]
    cash_rate = params[15]
    n = weights.shape[1]
    lower = -max_pos if allow_short else 0.0
    no_volume_limit = math.inf if cap >= 1.0 else 0.0
    shares = np.zeros(n)
    cash = cash0
    for t in range(start, stop):
        i = t - start
        held = 0.0
        for j in range(n):
            if shares[j] != 0.0:
                held += shares[j] * mark[t, j]
        prev_eq = cash + held
        size_eq = max(prev_eq, 0.0)
        explicit_gross = 0.0
        held_gross = 0.0
        for j in range(n):
            w = weights[t, j]
            if math.isnan(w):
                if size_eq > 0.0 and shares[j] != 0.0:
                    held_gross += abs(shares[j] * mark[t, j] / size_eq)
            else:
                explicit_gross += abs(min(max(w, lower), max_pos))
        room = max(max_lev - held_gross, 0.0)
        scale = room / explicit_gross if explicit_gross > room else 1.0
        trade_value = 0.0
        fee_total = 0.0
        for j in range(n):
            traded = 0.0
            w = weights[t, j]
            if not math.isnan(w):
                target = min(max(w, lower), max_pos) * scale * size_eq / mark[t, j]
                if not fractional:
                    lots = target / lot
                    sgn = 1.0 if lots > 0.0 else (-1.0 if lots < 0.0 else 0.0)
                    target = np.trunc(lots + sgn * _ROUND_EPS) * lot
                if math.isfinite(target):
                    desired = target - shares[j]
                    if min_trade > 0.0:
                        m0 = mark[t, j] if math.isfinite(mark[t, j]) else 0.0
                        if abs(desired) * m0 < min_trade:
                            desired = 0.0
                    px = fill[t + 1, j]
                    if math.isfinite(px) and px > 0.0:
                        v = volume[t + 1, j]
                        vol_ok = math.isfinite(v) and v > 0.0
                        limit = cap * v if vol_ok else no_volume_limit
                        if not fractional:
                            limit = np.floor(limit / lot) * lot
                        sgn = 1.0 if desired > 0.0 else (-1.0 if desired < 0.0 else 0.0)
                        traded = sgn * min(abs(desired), limit)
            out_traded[i, j] = traded
            if traded != 0.0:
                px = fill[t + 1, j]
                notional = abs(traded) * px
                sig = sigma[t, j] if math.isfinite(sigma[t, j]) else 0.0
                fee = notional * (comm_bps * BPS) + abs(traded) * comm_share
                if min_comm > 0.0:
                    fee = max(fee, min_comm)
                spread = notional * (half_spread * BPS)
                slippage = notional * (slip_bps * BPS + slip_vol * sig)
                impact = 0.0
                if impact_coef > 0.0:
                    v = volume[t + 1, j]
                    if math.isfinite(v) and v > 0.0:
                        impact = notional * (impact_coef * math.sqrt(abs(traded) / v) * sig)
                out_fees[0, i, j] = fee
                out_fees[1, i, j] = spread
                out_fees[2, i, j] = slippage
                out_fees[3, i, j] = impact
                fee_total += fee + spread + slippage + impact
                trade_value += traded * px
                shares[j] += traded
            else:
                out_fees[0, i, j] = 0.0
                out_fees[1, i, j] = 0.0
                out_fees[2, i, j] = 0.0
                out_fees[3, i, j] = 0.0
        cash = cash - trade_value - fee_total
        short_value = 0.0
        held = 0.0
        for j in range(n):
            if shares[j] != 0.0:
                value = shares[j] * mark[t + 1, j]
                held += value
                if shares[j] < 0.0:
                    short_value -= value
            out_shares[i, j] = shares[j]
        borrow = short_value * borrow_rate
        interest = max(cash, 0.0) * cash_rate
        cash = cash - borrow + interest
        out_scalars[0, i] = prev_eq
        out_scalars[1, i] = cash + held
        out_scalars[2, i] = cash
        out_scalars[3, i] = borrow
        out_scalars[4, i] = interest


def pack_params(config: SimConfig) -> FloatArray:
    """The config as the float vector ``simulate_path`` reads."""
    c = config.costs
    return np.array(
        [
            1.0 if config.allow_short else 0.0,
            config.max_position,
            config.max_leverage,
            1.0 if config.fractional else 0.0,
            config.lot_size,
            config.min_trade_value,
            c.commission_bps,
            c.commission_per_share,
            c.min_commission,
            c.half_spread_bps,
            c.slippage_bps,
            c.slippage_vol_mult,
            c.impact_coef,
            c.participation_cap,
            c.borrow_bps_annual * BPS / config.periods_per_year,
            c.cash_rate_annual / config.periods_per_year,
        ],
        dtype=np.float64,
    )


def numba_available() -> bool:
    """True when numba can be imported (the compiled kernel is then used by default)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def compiled_kernel() -> Callable[..., Any]:
    """``simulate_path`` compiled with numba (cached on disk after the first compile)."""
    import numba

    kernel: Callable[..., Any] = numba.njit(cache=True, nogil=True)(simulate_path)
    return kernel


__all__ = ["compiled_kernel", "numba_available", "pack_params", "simulate_path"]
