"""A compiled single-account step: ``tradeforge.sim.step`` for one account and one bar.

``account_step`` performs, for one account at decision bar ``t``, exactly the operations of
:func:`tradeforge.sim.step` (same order of rules, same formulas; see ``tradeforge.sim.step``)
on scalars, so that hot loops with one account avoid the ~100 numpy calls a batched step costs.
It is the only compiled copy of the rules: the single ``TradingEnv`` (``tradeforge.envs.kernel``)
and the backtester (``tradeforge.backtest.engine_kernel.simulate_path``, one call per bar) both
run it. Tests check it against ``sim.step`` on real data with every cost switched on, to a few
units in the last place (the order of float operations in the sums over assets differs:
sequential here, pairwise in numpy).

numba is optional. When it is importable, the functions of this module are numba-compiled
lazily on their first call and cached on disk under a key that includes a digest of every
source file they depend on (``tradeforge.sim.jit``): editing this file also invalidates the
cached env and backtest kernels that call ``account_step``. Without numba they stay plain Python
(correct but slow) and ``NUMBA_AVAILABLE`` is False, so callers use the numpy ``sim.step``
instead. Importing this module compiles nothing.
"""

from __future__ import annotations

import math

import numpy as np

from tradeforge.core.errors import SimulationError
from tradeforge.core.types import FloatArray
from tradeforge.sim.config import FillPrice, SimConfig
from tradeforge.sim.costs import BPS, per_bar_rates
from tradeforge.sim.jit import NUMBA_AVAILABLE, jit
from tradeforge.sim.market import MarketArrays

_ROUND_EPS = 1e-9  # the same tolerance as sim.step's lot rounding

# Layout of the parameter vector ``pack_sim_params`` builds (indices into ``params``).
P_ALLOW_SHORT, P_MAX_POSITION, P_MAX_LEVERAGE, P_FRACTIONAL, P_LOT = 0, 1, 2, 3, 4
P_MIN_TRADE, P_COMM_BPS, P_COMM_SHARE, P_MIN_COMM, P_HALF_SPREAD = 5, 6, 7, 8, 9
P_SLIP_BPS, P_SLIP_VOL, P_IMPACT, P_CAP, P_BORROW, P_CASH_RATE = 10, 11, 12, 13, 14, 15
P_MARGIN_RATE, P_REBATE_RATE = 16, 17
N_SIM_PARAMS = 18

# Rows of the ``out`` array ``account_step`` writes (each of length N).
OUT_TRADED, OUT_FILL, OUT_COMMISSION, OUT_SPREAD, OUT_SLIPPAGE, OUT_IMPACT, OUT_WEIGHTS = range(7)
N_OUT_ROWS = 7

# Rows of the stacked market array (``stack_market``): each (T, N). ``M_ADV`` row t is the
# trailing average volume known at bar t (``MarketArrays.adv``).
M_MARK, M_FILL, M_ADV, M_SIGMA = 0, 1, 2, 3


def pack_sim_params(config: SimConfig, frequency: str = "1d") -> FloatArray:
    """``config`` as the float vector ``account_step`` reads (layout: the ``P_*`` constants).

    Per-bar carry rates use ``config.periods_for(frequency)`` (``frequency``: the data's, e.g.
    ``MarketArrays.frequency``; ignored when ``config.periods_per_year`` is set).
    """
    c = config.costs
    params = np.empty(N_SIM_PARAMS, dtype=np.float64)
    params[P_ALLOW_SHORT] = 1.0 if config.allow_short else 0.0
    params[P_MAX_POSITION] = config.max_position
    params[P_MAX_LEVERAGE] = config.max_leverage
    params[P_FRACTIONAL] = 1.0 if config.fractional else 0.0
    params[P_LOT] = config.lot_size
    params[P_MIN_TRADE] = config.min_trade_value
    params[P_COMM_BPS] = c.commission_bps
    params[P_COMM_SHARE] = c.commission_per_share
    params[P_MIN_COMM] = c.min_commission
    params[P_HALF_SPREAD] = c.half_spread_bps
    params[P_SLIP_BPS] = c.slippage_bps
    params[P_SLIP_VOL] = c.slippage_vol_mult
    params[P_IMPACT] = c.impact_coef
    params[P_CAP] = c.participation_cap
    # the per-bar rates of sim.costs.carry_costs (the same numbers)
    borrow, margin, cash_rate, rebate = per_bar_rates(c, config.periods_for(frequency))
    params[P_BORROW] = borrow
    params[P_CASH_RATE] = cash_rate
    params[P_MARGIN_RATE] = margin
    params[P_REBATE_RATE] = rebate
    return params


def stack_market(
    mark: FloatArray, fill: FloatArray, adv: FloatArray, sigma: FloatArray
) -> FloatArray:
    """The (4, T, N) contiguous array ``account_step`` reads: mark, fill price, ADV, sigma.

    ``fill`` is ``MarketArrays.fill_prices(config.fill_price)``; ``adv`` the trailing average
    volume (``MarketArrays.adv``); ``sigma`` the volatility.
    """
    out: FloatArray = np.ascontiguousarray(np.stack([mark, fill, adv, sigma]), dtype=np.float64)
    return out


def stack_for(market: MarketArrays, fill_price: FillPrice) -> FloatArray:
    """``stack_market`` of ``market`` for ``SimConfig.fill_price``."""
    return stack_market(market.mark, market.fill_prices(fill_price), market.adv, market.volatility)


FILL_OPEN, FILL_CLOSE, FILL_VWAP = 0, 1, 2  # ``fill`` codes of ``market_stack``
_FILL_CODES = {"open": FILL_OPEN, "close": FILL_CLOSE, "vwap": FILL_VWAP}


@jit(error_model="numpy")
def _market_stack_kernel(
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    volume: FloatArray,
    vwap: FloatArray,
    fill: int,
    vol_window: int,
    adv_window: int,
    out: FloatArray,
) -> None:
    """Fill the (4, T, N) ``out`` with mark, fill price, ADV and volatility in one pass over time
    (a (3, T, N) ``out`` gets the first three rows: the volatility is not computed).

    Each row repeats the numpy arithmetic of ``tradeforge.sim.market`` operation by operation
    (``forward_fill``; ``rolling_volatility`` and ``rolling_mean_volume`` through sequential
    running sums, i.e. numpy's ``cumsum`` along time, minus the sum ``window`` bars earlier; the
    VWAP proxy ``(o + h + l + c) / 4`` where ``vwap`` has no finite value), so the values are the
    same bits. ``vwap`` is (T, N), or (0, 0) when the panel has no VWAP field. The inner loops
    over assets are branch-free selects (numpy's error model: no division checks), so they
    vectorize.
    """
    n_bars, n = close.shape
    has_vwap = vwap.shape[0] == n_bars
    mark_prev = np.full(n, np.nan)
    # running sums (numpy's cumsum along time) and rings of their last ``window`` values
    v1 = np.zeros(n)
    v2 = np.zeros(n)
    vn = np.zeros(n)
    ring1 = np.zeros((vol_window, n))
    ring2 = np.zeros((vol_window, n))
    ringn = np.zeros((vol_window, n))
    a1 = np.zeros(n)
    an = np.zeros(n)
    aring1 = np.zeros((adv_window, n))
    aringn = np.zeros((adv_window, n))
    with_sigma = out.shape[0] > M_SIGMA
    for t in range(n_bars):
        row_c = close[t]
        mark = out[M_MARK, t]
        if not with_sigma:  # forward_fill only
            for j in range(n):
                c = row_c[j]
                m = c if np.abs(c) < np.inf else mark_prev[j]
                mark_prev[j] = m
                mark[j] = m
        else:
            sigma = out[M_SIGMA, t]
            # rolling_volatility: simple returns against the last known close before t
            kv = t % vol_window
            r1, r2, rn = ring1[kv], ring2[kv], ringn[kv]
            full = t >= vol_window  # before: numpy subtracts a zero-padded lag (x - 0.0 == x)
            for j in range(n):
                c = row_c[j]
                prev = mark_prev[j]
                ret = c / prev - 1.0
                ok = (np.abs(c) < np.inf) & (prev > 0.0) & (np.abs(ret) < np.inf)
                r0 = ret if ok else 0.0
                v1[j] += r0
                v2[j] += r0 * r0
                vn[j] += 1.0 if ok else 0.0
                s1 = v1[j] - r1[j] if full else v1[j]
                s2 = v2[j] - r2[j] if full else v2[j]
                cnt = vn[j] - rn[j] if full else vn[j]
                r1[j] = v1[j]
                r2[j] = v2[j]
                rn[j] = vn[j]
                var = (s2 - s1 * s1 / cnt) / (cnt - 1.0)
                var = var if not var < 0.0 else 0.0  # np.maximum(var, 0.0): keeps NaN and -0.0
                sigma[j] = np.sqrt(var) if cnt >= 2.0 else np.nan
                # forward_fill: the last finite close at or before t
                m = c if np.abs(c) < np.inf else prev
                mark_prev[j] = m
                mark[j] = m
        # rolling_mean_volume: mean of the known volumes of the last ``adv_window`` bars
        ka = t % adv_window
        q1, qn = aring1[ka], aringn[ka]
        row_v = volume[t]
        adv = out[M_ADV, t]
        full = t >= adv_window
        for j in range(n):
            v = row_v[j]
            vok = (np.abs(v) < np.inf) & (v >= 0.0)
            a1[j] += v if vok else 0.0
            an[j] += 1.0 if vok else 0.0
            s = a1[j] - q1[j] if full else a1[j]
            cnt_a = an[j] - qn[j] if full else an[j]
            q1[j] = a1[j]
            qn[j] = an[j]
            adv[j] = s / cnt_a if cnt_a > 0.5 else np.nan
        # fill price
        px = out[M_FILL, t]
        if fill == FILL_OPEN:
            px[:] = open_[t]
        elif fill == FILL_CLOSE:
            px[:] = row_c
        else:
            row_o, row_h, row_l = open_[t], high[t], low[t]
            for j in range(n):
                proxy = (row_o[j] + row_h[j] + row_l[j] + row_c[j]) / 4.0
                if has_vwap:
                    given = vwap[t, j]
                    proxy = given if np.abs(given) < np.inf else proxy
                px[j] = proxy


def market_stack(
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    volume: FloatArray,
    vwap: FloatArray | None,
    fill_price: FillPrice,
    vol_window: int,
    adv_window: int,
    volatility: bool = True,
) -> FloatArray:
    """``stack_for(MarketArrays.from_arrays(...), fill_price)`` computed in one compiled pass.

    The same (4, T, N) values, to the last bit (tested), without building the nine (T, N)
    arrays of ``MarketArrays`` first: the backtester's fast path when it gets no ``market``.
    Inputs are (T, N); windows as ``MarketArrays`` (``vol_window >= 2``, ``adv_window >= 1``).
    ``volatility=False`` returns only the first three rows (mark, fill price, ADV; the same
    bits), (3, T, N), without computing the rolling volatility.
    """
    if vol_window < 2:
        raise SimulationError(f"vol_window = {vol_window}; expected an integer >= 2")
    if adv_window < 1:
        raise SimulationError(f"adv_window = {adv_window}; expected an integer >= 1")
    if fill_price not in _FILL_CODES:
        raise SimulationError(
            f"fill_price = {fill_price!r}; expected one of 'open', 'close', 'vwap'"
        )

    def prep(a: FloatArray) -> FloatArray:
        arr: FloatArray = np.ascontiguousarray(a, dtype=np.float64)
        return arr

    c = prep(close)
    if c.ndim != 2:
        raise SimulationError(f"market field 'close' has {c.ndim} dims; expected 2")
    fields = [prep(x) for x in (open_, high, low, volume)]
    for name, arr in zip(("open", "high", "low", "volume"), fields, strict=True):
        if arr.shape != c.shape:
            raise SimulationError(
                f"market field {name!r} has shape {arr.shape}; expected {c.shape}"
            )
    vw = np.zeros((0, 0)) if vwap is None or fill_price != "vwap" else prep(vwap)
    if vw.size and vw.shape != c.shape:
        raise SimulationError(f"market field 'vwap' has shape {vw.shape}; expected {c.shape}")
    out = np.empty((4 if volatility else 3, *c.shape))
    o, h, lo, v = fields
    _market_stack_kernel(o, h, lo, c, v, vw, _FILL_CODES[fill_price], vol_window, adv_window, out)
    return out


@jit(inline="always")
def account_step(
    shares: FloatArray,
    cash: float,
    weights: FloatArray,
    market: FloatArray,
    t: int,
    params: FloatArray,
    out: FloatArray,
) -> tuple[float, float, float, float, float, float]:
    """Move one account from close[t] to close[t+1] given target ``weights`` (N,) (NaN = hold).

    ``shares`` (N,) is updated in place; ``market`` is ``stack_market(...)``; ``params`` is
    ``pack_sim_params(config)``. ``out`` (7, N) (any writable view, e.g. one bar of a
    (7, L, N) path array) receives, per asset, the rows ``OUT_*``:
    traded shares, fill price (NaN where untradable), commission, spread, slippage, impact and
    the held weights after the fill. Returns ``(cash, prev_equity, equity, borrow, margin,
    interest)`` after the step. The caller guarantees ``0 <= t <= T - 2`` and finite (or NaN) weights.
    """
    allow_short = params[P_ALLOW_SHORT] > 0.0
    max_pos = params[P_MAX_POSITION]
    max_lev = params[P_MAX_LEVERAGE]
    fractional = params[P_FRACTIONAL] > 0.0
    lot = params[P_LOT]
    min_trade = params[P_MIN_TRADE]
    comm_bps = params[P_COMM_BPS]
    comm_share = params[P_COMM_SHARE]
    min_comm = params[P_MIN_COMM]
    half_spread = params[P_HALF_SPREAD]
    slip_bps = params[P_SLIP_BPS]
    slip_vol = params[P_SLIP_VOL]
    impact_coef = params[P_IMPACT]
    cap = params[P_CAP]
    n = shares.shape[0]
    lower = -max_pos if allow_short else 0.0
    no_volume_limit = math.inf if cap >= 1.0 else 0.0
    t1 = t + 1
    # (the market is indexed in place: row views would cost reference counting on every call)

    # 1. equity at close[t]
    held = 0.0
    for j in range(n):
        if shares[j] != 0.0:
            held += shares[j] * market[M_MARK, t, j]
    prev_equity = cash + held
    size_eq = max(prev_equity, 0.0)
    # 2. position and leverage limits
    explicit_gross = 0.0
    held_gross = 0.0
    for j in range(n):
        w = weights[j]
        if math.isnan(w):
            if size_eq > 0.0 and shares[j] != 0.0:
                held_gross += abs(shares[j] * market[M_MARK, t, j] / size_eq)
        else:
            explicit_gross += abs(min(max(w, lower), max_pos))
    room = max(max_lev - held_gross, 0.0)
    scale = room / explicit_gross if explicit_gross > room else 1.0
    # 3.-5. sizing, order filters, participation cap, fills and trade costs
    trade_value = 0.0
    fee_total = 0.0
    for j in range(n):
        traded = 0.0
        px = market[M_FILL, t1, j]
        tradable = math.isfinite(px) and px > 0.0
        w = weights[j]
        if not math.isnan(w):
            target = min(max(w, lower), max_pos) * scale * size_eq / market[M_MARK, t, j]
            if not fractional:
                lots = target / lot
                sgn = 1.0 if lots > 0.0 else (-1.0 if lots < 0.0 else 0.0)
                target = np.trunc(lots + sgn * _ROUND_EPS) * lot
            if math.isfinite(target):
                desired = target - shares[j]
                if min_trade > 0.0:
                    m0 = market[M_MARK, t, j] if math.isfinite(market[M_MARK, t, j]) else 0.0
                    if abs(desired) * m0 < min_trade:
                        desired = 0.0
                if tradable:
                    v = market[M_ADV, t, j]
                    limit = cap * v if (math.isfinite(v) and v > 0.0) else no_volume_limit
                    if not fractional:
                        limit = np.floor(limit / lot) * lot
                    sgn = 1.0 if desired > 0.0 else (-1.0 if desired < 0.0 else 0.0)
                    traded = sgn * min(abs(desired), limit)
        out[OUT_TRADED, j] = traded
        out[OUT_FILL, j] = px if tradable else math.nan
        fee = 0.0
        spread = 0.0
        slippage = 0.0
        impact = 0.0
        if traded != 0.0:
            notional = abs(traded) * px
            sig = market[M_SIGMA, t, j] if math.isfinite(market[M_SIGMA, t, j]) else 0.0
            fee = notional * (comm_bps * BPS) + abs(traded) * comm_share
            if min_comm > 0.0:
                fee = max(fee, min_comm)
            spread = notional * (half_spread * BPS)
            slippage = notional * (slip_bps * BPS + slip_vol * sig)
            if impact_coef > 0.0:
                v = market[M_ADV, t, j]
                if math.isfinite(v) and v > 0.0:
                    impact = notional * (impact_coef * math.sqrt(abs(traded) / v) * sig)
            fee_total += fee + spread + slippage + impact
            trade_value += traded * px
            shares[j] += traded
        out[OUT_COMMISSION, j] = fee
        out[OUT_SPREAD, j] = spread
        out[OUT_SLIPPAGE, j] = slippage
        out[OUT_IMPACT, j] = impact
    cash = cash - trade_value - fee_total
    # 6. carry; 7. mark at close[t+1]
    short_value = 0.0
    held = 0.0
    for j in range(n):
        value = 0.0
        if shares[j] != 0.0:
            value = shares[j] * market[M_MARK, t1, j]
            held += value
            if shares[j] < 0.0:
                short_value -= value
        out[OUT_WEIGHTS, j] = value
    free = cash - short_value
    borrow = short_value * params[P_BORROW]
    margin = max(-free, 0.0) * params[P_MARGIN_RATE]
    interest = max(free, 0.0) * params[P_CASH_RATE] + short_value * params[P_REBATE_RATE]
    cash = cash - borrow - margin + interest
    equity = cash + held
    for j in range(n):
        out[OUT_WEIGHTS, j] = out[OUT_WEIGHTS, j] / equity if equity != 0.0 else 0.0
    return cash, prev_equity, equity, borrow, margin, interest


__all__ = [
    "NUMBA_AVAILABLE",
    "N_OUT_ROWS",
    "N_SIM_PARAMS",
    "OUT_COMMISSION",
    "OUT_FILL",
    "OUT_IMPACT",
    "OUT_SLIPPAGE",
    "OUT_SPREAD",
    "OUT_TRADED",
    "OUT_WEIGHTS",
    "account_step",
    "jit",
    "market_stack",
    "pack_sim_params",
    "stack_for",
    "stack_market",
]
