"""The compiled path loops of the backtester: ``tradeforge.sim.kernel.account_step`` bar by bar.

``simulate_path`` runs one account over a range of decision bars in one compiled loop. It holds
no market arithmetic of its own: every bar is one call of :func:`tradeforge.sim.kernel.account_step`
(the compiled one-account ``tradeforge.sim.step`` that the single ``TradingEnv`` also runs), with
the parameters packed by :func:`tradeforge.sim.kernel.pack_sim_params` and the market stacked by
:func:`tradeforge.sim.kernel.stack_market`. It is the reference of ``simulate_path_fused``, what
``run_backtest`` runs when numba is installed (``kernel="auto"`` or ``"numba"``;
``compiled_kernel()``): the same arguments and the same operations per element in the same
order, scheduled in passes over the assets that vectorize (about 2.7x faster for 100 assets),
tested bit-equal to ``simulate_path``. Without numba ``run_backtest`` loops over ``sim.step``;
tests check both equal (to float rounding of the sums over assets: a sequential sum in the
kernel, a pairwise one in numpy).

``run_backtest`` builds the market it reads with :func:`path_market`: the full
``sim.kernel.market_stack`` when a cost scales with volatility, otherwise only the rows mark,
fill price and ADV (the rolling volatility was about two thirds of building the market, and
``slippage_vol_mult * sigma`` with ``slippage_vol_mult = 0`` is +0.0 whatever sigma is), with
the same bits in every output (tested).

Compilation is lazy (first call) and cached on disk under a key that includes a digest of this
file and of every module it imports (``tradeforge.sim.jit``): an edit of
``tradeforge/sim/kernel.py`` recompiles these loops too. Nothing is compiled on import.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tradeforge.core.errors import BacktestError, SimulationError
from tradeforge.core.types import FloatArray
from tradeforge.sim import kernel as _sim_kernel
from tradeforge.sim.config import SimConfig
from tradeforge.sim.costs import BPS
from tradeforge.sim.kernel import (
    M_ADV,
    M_FILL,
    M_MARK,
    M_SIGMA,
    OUT_COMMISSION,
    OUT_FILL,
    OUT_IMPACT,
    OUT_SLIPPAGE,
    OUT_SPREAD,
    OUT_TRADED,
    OUT_WEIGHTS,
    P_ALLOW_SHORT,
    P_BORROW,
    P_CAP,
    P_CASH_RATE,
    P_COMM_BPS,
    P_COMM_SHARE,
    P_FRACTIONAL,
    P_HALF_SPREAD,
    P_IMPACT,
    P_LOT,
    P_MARGIN_RATE,
    P_MAX_LEVERAGE,
    P_MAX_POSITION,
    P_MIN_COMM,
    P_MIN_TRADE,
    P_REBATE_RATE,
    P_SLIP_BPS,
    P_SLIP_VOL,
    account_step,
    jit,
    market_stack,
)

_ROUND_EPS = 1e-9  # sim.kernel's lot-rounding tolerance

# Rows of ``out_scalars`` (``simulate_path``).
SC_PREV_EQUITY, SC_EQUITY, SC_CASH, SC_BORROW, SC_MARGIN, SC_INTEREST = range(6)
N_SCALARS = 6


@jit
def simulate_path(
    weights: FloatArray,
    market: FloatArray,
    start: int,
    stop: int,
    cash0: float,
    params: FloatArray,
    out: FloatArray,
    out_shares: FloatArray,
    out_scalars: FloatArray,
) -> None:
    """Run decision bars ``t = start .. stop-1`` (fills at t+1) for one account from ``cash0``.

    ``weights`` (T, N) are the targets (NaN = hold); ``market`` is ``stack_market(...)``;
    ``params`` is ``pack_sim_params(config)``. For row ``i = t - start`` it writes
    ``out[:, i]`` (``out`` is (7, L, N): the rows ``OUT_*`` of ``account_step``, i.e. traded
    shares, fill price, commission, spread, slippage, impact and held weights after the fill),
    ``out_shares[i]`` (shares after the fill) and ``out_scalars[k, i]`` for the ``SC_*`` rows
    k = prev_equity, equity, cash, borrow, margin, interest.
    """
    n = weights.shape[1]
    shares = np.zeros(n)
    cash = cash0
    for t in range(start, stop):
        i = t - start
        cash, prev_equity, equity, borrow, margin, interest = account_step(
            shares, cash, weights[t], market, t, params, out[:, i, :]
        )
        for j in range(n):
            out_shares[i, j] = shares[j]
        out_scalars[SC_PREV_EQUITY, i] = prev_equity
        out_scalars[SC_EQUITY, i] = equity
        out_scalars[SC_CASH, i] = cash
        out_scalars[SC_BORROW, i] = borrow
        out_scalars[SC_MARGIN, i] = margin
        out_scalars[SC_INTEREST, i] = interest


@jit(error_model="numpy")
def _fused_planes(
    weights: FloatArray,
    market: FloatArray,
    start: int,
    stop: int,
    cash0: float,
    params: FloatArray,
    o_traded: FloatArray,
    o_fill: FloatArray,
    o_comm: FloatArray,
    o_spread: FloatArray,
    o_slip: FloatArray,
    o_impact: FloatArray,
    o_weights: FloatArray,
    out_shares: FloatArray,
    out_scalars: FloatArray,
) -> None:
    """``simulate_path_fused`` on the seven (L, N) planes of ``out`` passed one by one (each
    C-contiguous when ``out`` is a (7, L, N) array or a slice of one along L, so the stores of
    the per-asset pass vectorize)."""
    n = weights.shape[1]
    allow_short = params[P_ALLOW_SHORT] > 0.0
    max_pos = params[P_MAX_POSITION]
    max_lev = params[P_MAX_LEVERAGE]
    fractional = params[P_FRACTIONAL] > 0.0
    lot = params[P_LOT]
    min_trade = params[P_MIN_TRADE]
    comm_rate = params[P_COMM_BPS] * BPS
    comm_share = params[P_COMM_SHARE]
    min_comm = params[P_MIN_COMM]
    spread_rate = params[P_HALF_SPREAD] * BPS
    slip_rate = params[P_SLIP_BPS] * BPS
    slip_vol = params[P_SLIP_VOL]
    impact_coef = params[P_IMPACT]
    cap = params[P_CAP]
    lower = -max_pos if allow_short else 0.0
    no_volume_limit = math.inf if cap >= 1.0 else 0.0
    use_min_trade = min_trade > 0.0
    use_min_comm = min_comm > 0.0
    use_impact = impact_coef > 0.0
    # without vol-scaled costs sigma only enters as ``slip_vol * sig`` = 0 * sig, +0.0 for
    # every sigma (a non-finite one reads as 0.0): a row of zeros stands in for the market's
    # volatility row, which is then never read (the same bits, less memory traffic)
    use_sigma = slip_vol > 0.0 or use_impact
    no_sigma = np.zeros(n)
    shares = np.zeros(n)
    cash = cash0
    held = 0.0  # value of the shares at the current close (no shares yet)
    for t in range(start, stop):
        i = t - start
        t1 = t + 1
        w_row = weights[t]
        m0_row = market[M_MARK, t]
        m1_row = market[M_MARK, t1]
        px_row = market[M_FILL, t1]
        adv_row = market[M_ADV, t]
        sg_row = market[M_SIGMA, t] if use_sigma else no_sigma
        prev_equity = cash + held
        size_eq = max(prev_equity, 0.0)
        # (1) position and leverage limits
        explicit_gross = 0.0
        held_gross = 0.0
        for j in range(n):
            w = w_row[j]
            if math.isnan(w):
                if size_eq > 0.0 and shares[j] != 0.0:
                    held_gross += abs(shares[j] * m0_row[j] / size_eq)
            else:
                explicit_gross += abs(min(max(w, lower), max_pos))
        room = max(max_lev - held_gross, 0.0)
        scale = room / explicit_gross if explicit_gross > room else 1.0
        # (2) per asset, branch-free: sizing, filters, cap, fills, trade costs
        for j in range(n):
            w = w_row[j]
            m0 = m0_row[j]
            px = px_row[j]
            v = adv_row[j]
            sg = sg_row[j]
            tradable = (abs(px) < math.inf) & (px > 0.0)
            target = min(max(w, lower), max_pos) * scale * size_eq / m0
            if not fractional:
                lots = target / lot
                sgn = 1.0 if lots > 0.0 else (-1.0 if lots < 0.0 else 0.0)
                target = np.trunc(lots + sgn * _ROUND_EPS) * lot
            desired = target - shares[j]
            if use_min_trade:
                m0f = m0 if abs(m0) < math.inf else 0.0
                desired = 0.0 if abs(desired) * m0f < min_trade else desired
            v_ok = (abs(v) < math.inf) & (v > 0.0)
            limit = cap * v if v_ok else no_volume_limit
            if not fractional:
                limit = np.floor(limit / lot) * lot
            sgn = 1.0 if desired > 0.0 else (-1.0 if desired < 0.0 else 0.0)
            trade = sgn * min(abs(desired), limit)
            ok = (w == w) & (abs(target) < math.inf) & tradable
            traded = trade if ok else 0.0
            o_traded[i, j] = traded
            o_fill[i, j] = px if tradable else math.nan
            size = abs(traded)
            notional = size * px
            sig = sg if abs(sg) < math.inf else 0.0
            fee = notional * comm_rate + size * comm_share
            if use_min_comm:
                fee = max(fee, min_comm)
            spread = notional * spread_rate
            slippage = notional * (slip_rate + slip_vol * sig)
            impact = 0.0
            if use_impact:
                impact = notional * (impact_coef * math.sqrt(size / v) * sig) if v_ok else 0.0
            nz = traded != 0.0
            o_comm[i, j] = fee if nz else 0.0
            o_spread[i, j] = spread if nz else 0.0
            o_slip[i, j] = slippage if nz else 0.0
            o_impact[i, j] = impact if nz else 0.0
        # (3) in asset order: costs and notionals, shares, the marks at close[t+1]
        trade_value = 0.0
        fee_total = 0.0
        short_value = 0.0
        held = 0.0
        for j in range(n):
            traded = o_traded[i, j]
            if traded != 0.0:
                fee_total += o_comm[i, j] + o_spread[i, j] + o_slip[i, j] + o_impact[i, j]
                trade_value += traded * px_row[j]
                shares[j] += traded
            s = shares[j]
            value = 0.0
            if s != 0.0:
                value = s * m1_row[j]
                held += value
                if s < 0.0:
                    short_value -= value
            o_weights[i, j] = value
            out_shares[i, j] = s
        cash = cash - trade_value - fee_total
        free = cash - short_value
        borrow = short_value * params[P_BORROW]
        margin = max(-free, 0.0) * params[P_MARGIN_RATE]
        interest = max(free, 0.0) * params[P_CASH_RATE] + short_value * params[P_REBATE_RATE]
        cash = cash - borrow - margin + interest
        equity = cash + held
        # (4) held weights after the fill
        if equity != 0.0:
            for j in range(n):
                o_weights[i, j] = o_weights[i, j] / equity
        else:
            for j in range(n):
                o_weights[i, j] = 0.0
        out_scalars[SC_PREV_EQUITY, i] = prev_equity
        out_scalars[SC_EQUITY, i] = equity
        out_scalars[SC_CASH, i] = cash
        out_scalars[SC_BORROW, i] = borrow
        out_scalars[SC_MARGIN, i] = margin
        out_scalars[SC_INTEREST, i] = interest


def simulate_path_fused(
    weights: FloatArray,
    market: FloatArray,
    start: int,
    stop: int,
    cash0: float,
    params: FloatArray,
    out: FloatArray,
    out_shares: FloatArray,
    out_scalars: FloatArray,
) -> None:
    """``simulate_path`` (same arguments, same outputs to the last bit) in one fused loop over
    bars whose per-asset work is split into passes LLVM can vectorize.

    Every element gets exactly the operations of :func:`tradeforge.sim.kernel.account_step` in
    the same order; only the schedule differs: (1) the sequential gross sum of the clipped
    targets, (2) a branch-free pass over assets (targets, lot rounding, order filters, the
    participation cap, fills, the four trade costs; every market value loaded once, every
    output row stored unconditionally), then (3) one sequential pass that adds the fees and
    traded notionals in asset order, updates the shares and marks them at close[t+1] (the held
    value is also next bar's equity at its close[t]: the same products summed in the same
    order, so it is not summed twice), and (4) the held weights. numpy's error model (no
    Python check per division) lets the passes vectorize; where ``account_step`` would raise
    ``ZeroDivisionError`` (a zero mark price) this gives numpy's inf/NaN, as ``sim.step`` does.
    Tested bit-equal to ``simulate_path`` on real data with every cost on and on edge cases.
    ``market`` may also be the (3, T, N) stack without volatility (:func:`path_market`) when
    ``params`` has no vol-scaled cost.
    """
    if market.shape[0] <= M_SIGMA and (params[P_SLIP_VOL] > 0.0 or params[P_IMPACT] > 0.0):
        raise BacktestError(
            f"market has {market.shape[0]} rows (no volatility) but the costs scale with it "
            f"(slippage_vol_mult = {params[P_SLIP_VOL]}, impact_coef = {params[P_IMPACT]}); "
            "expected the (4, T, N) stack with the volatility row (sim.kernel.market_stack)"
        )
    _fused_planes(
        weights,
        market,
        start,
        stop,
        cash0,
        params,
        out[OUT_TRADED],
        out[OUT_FILL],
        out[OUT_COMMISSION],
        out[OUT_SPREAD],
        out[OUT_SLIPPAGE],
        out[OUT_IMPACT],
        out[OUT_WEIGHTS],
        out_shares,
        out_scalars,
    )


def uses_volatility(config: SimConfig) -> bool:
    """True when the config's costs read the volatility row of the market stack
    (``slippage_vol_mult > 0`` or ``impact_coef > 0``)."""
    return config.costs.slippage_vol_mult > 0.0 or config.costs.impact_coef > 0.0


def path_market(
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    volume: FloatArray,
    vwap: FloatArray | None,
    config: SimConfig,
) -> FloatArray:
    """The market ``simulate_path_fused`` reads for ``config``, from (T, N) fields.

    When the costs use the volatility (:func:`uses_volatility`) this is the (4, T, N)
    ``sim.kernel.market_stack(...)`` with the config's fill price and windows. Otherwise it is
    its first three rows (mark, fill price, ADV; the same bits), (3, T, N):
    ``market_stack(..., volatility=False)``, which skips the rolling volatility (two thirds of
    ``market_stack``'s time) and leaves no volatility row
    to write and read: sigma then only enters the costs as ``slippage_vol_mult * sigma`` with
    ``slippage_vol_mult = 0``, which is +0.0 for every sigma (a non-finite one is read as 0.0),
    so ``simulate_path_fused`` uses 0.0 and every output is the same bits as with the full
    stack (tested). ``simulate_path`` (the reference loop) needs the full stack.
    """
    try:
        return market_stack(
            open_,
            high,
            low,
            close,
            volume,
            vwap,
            config.fill_price,
            config.vol_window,
            config.adv_window,
            volatility=uses_volatility(config),
        )
    except SimulationError as exc:  # a backtest input: the backtest's error, same message
        raise BacktestError(str(exc)) from exc


@jit
def traded_values(traded: FloatArray, fill_price: FloatArray, out: FloatArray) -> None:
    """``out = abs(where(traded != 0, traded * fill_price, 0))`` elementwise, in one pass over the
    (L, N) arrays (the traded notional per fill; 0 where nothing traded, whatever the price)."""
    n_rows, n = traded.shape
    for i in range(n_rows):
        for j in range(n):
            x = traded[i, j]
            out[i, j] = abs(x * fill_price[i, j]) if x != 0.0 else 0.0


def numba_available() -> bool:
    """True when numba can be imported (the compiled kernel is then used by default)."""
    return bool(_sim_kernel.NUMBA_AVAILABLE)


def compiled_kernel() -> Callable[..., Any]:
    """The compiled path loop ``run_backtest`` runs: ``simulate_path_fused`` (compiled on its
    first call, then loaded from the cache)."""
    if not numba_available():
        raise BacktestError(
            "kernel = 'numba' but numba is not installed; pip install numba, or use "
            "kernel = 'auto' or 'step'"
        )
    kernel: Callable[..., Any] = simulate_path_fused
    return kernel


__all__ = [
    "N_SCALARS",
    "SC_BORROW",
    "SC_CASH",
    "SC_EQUITY",
    "SC_INTEREST",
    "SC_MARGIN",
    "SC_PREV_EQUITY",
    "compiled_kernel",
    "numba_available",
    "path_market",
    "simulate_path",
    "simulate_path_fused",
    "traded_values",
    "uses_volatility",
]
