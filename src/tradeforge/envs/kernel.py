"""The compiled single-env step: action -> target weights -> ``sim`` step -> reward -> observation.

``TradingCore`` with one row (``TradingEnv``) runs a whole step through ``env_step`` when numba is
available: the action interpreter (discrete, continuous, softmax and simplex/L1-ball weights;
an interpreter it does not know, e.g. a wrapped one, maps the action in Python and passes the
target), the simulator step (:func:`tradeforge.sim.kernel.account_step`, the compiled
one-account copy of ``tradeforge.sim.step``), the latency queue (``tradeforge.sim.latency``),
the average entry price, the reward terms of ``RewardState``, the termination rules and the flat
observation. Each part repeats the numpy code of the batched path operation by operation; tests
check the two paths equal (to a few units in the last place: numba's ``exp``/``log`` and sums may
round differently from numpy's on some CPUs) for every action kind and reward term with costs
switched on.

The compiled code is cached on disk under a key that includes a digest of this file and of every
module it imports (``tradeforge.sim.jit``), so an edit of ``tradeforge/sim/kernel.py`` also
recompiles ``env_step``.

State lives in three packed arrays that ``TradingCore`` exposes through views (``ints``: decision
bar, last bar, steps; ``acct``: the ``A_*`` scalars; ``assets``: the ``S_*`` rows of length N),
plus the (delay, N) queue of decided targets not yet released to the market.
"""

from __future__ import annotations

import math

import numpy as np

from tradeforge.core.types import FloatArray, IntArray
from tradeforge.sim.kernel import (
    M_MARK,
    N_OUT_ROWS,
    N_SIM_PARAMS,
    OUT_FILL,
    OUT_TRADED,
    OUT_WEIGHTS,
    P_ALLOW_SHORT,
    P_MAX_LEVERAGE,
    P_MAX_POSITION,
    account_step,
    jit,
)

# ints (int64): current decision bar, last decision bar of the episode, steps taken
I_T, I_STOP, I_STEPS = 0, 1, 2
N_INTS = 3
# acct (float64)
A_CASH, A_EQUITY, A_CASH_FRACTION, A_UPNL, A_TURNOVER, A_MEAN, A_SECOND, A_PEAK = range(8)
N_ACCT = 8
# assets rows (float64, each of length N); the rows from S_OUT on are the sim step's outputs.
# S_TARGET: the decided target; S_RELEASED: the target released to the market (with latency).
S_SHARES, S_TARGET, S_WEIGHTS, S_BASIS, S_OLD, S_RELEASED = range(6)
S_OUT = 6
N_ASSET_ROWS = S_OUT + N_OUT_ROWS
# params (float64): the sim parameters (``pack_sim_params``), then these
E_KIND = N_SIM_PARAMS
E_N_LEVELS, E_UNIT, E_LOW_LEVEL, E_SOFTMAX_SCALE, E_N_ASSETS = (E_KIND + k for k in range(1, 6))
E_PNL, E_LOG, E_DSR, E_ETA, E_DOWNSIDE, E_DRAWDOWN, E_TURNOVER, E_SCALE = (
    E_KIND + k for k in range(6, 14)
)
E_INITIAL_CASH, E_RUIN, E_MAX_DD, E_HAS_MAX_DD, E_WINDOW, E_OBS = (
    E_KIND + k for k in range(14, 20)
)
N_PARAMS = E_KIND + 20

# action kinds (params[E_KIND])
KIND_TARGET = 0  # the target row is already filled in (interpreter ran in Python)
KIND_POSITION = 1  # discrete, position mode
KIND_TRADE = 2  # discrete, trade mode
KIND_CONTINUOUS = 3
KIND_SOFTMAX = 4
KIND_SIMPLEX = 5  # weights, simplex projection (long only)
KIND_L1_BALL = 6  # weights, L1-ball projection (with shorts)

# return codes
OK, BAD_ACTION, BAD_EQUITY = 0, 1, 2

_TOL = 1e-6  # as envs.actions
_TINY = 1e-12  # as envs.rewards


@jit
def _project_simplex(v: FloatArray, radius: float, out: FloatArray) -> None:
    """``envs.actions.project_simplex`` for one row: projection onto {w >= 0, sum w = radius}."""
    n = v.shape[0]
    u = -np.sort(-v)
    css = 0.0
    rho = n - 1  # numpy's argmax over an all-False mask picks the last index
    theta_css = 0.0
    found = False
    for i in range(n):
        css += u[i]
        if u[i] - (css - radius) / (i + 1) > 0.0:
            rho = i
            theta_css = css - radius
            found = True
    if not found:
        theta_css = css - radius
    theta = theta_css / (rho + 1)
    for i in range(n):
        out[i] = max(v[i] - theta, 0.0)


@jit
def _map_action(action: FloatArray, target: FloatArray, params: FloatArray) -> bool:
    """Write the target weights of ``action`` into ``target``; False if the action is invalid.

    Mirrors ``DiscreteActions``, ``ContinuousActions`` and ``WeightsActions`` (softmax, simplex,
    L1 ball) of ``tradeforge.envs.actions`` for one row.
    """
    kind = int(params[E_KIND])
    n = target.shape[0]
    if kind == KIND_TARGET:
        return True
    max_pos = params[P_MAX_POSITION]
    max_lev = params[P_MAX_LEVERAGE]
    allow_short = params[P_ALLOW_SHORT] > 0.0
    if kind in (KIND_POSITION, KIND_TRADE):
        n_levels = params[E_N_LEVELS]
        unit = params[E_UNIT]
        for j in range(n):
            a = action[j]
            if not (a == math.floor(a) and a >= 0.0 and a < n_levels):
                return False
        for j in range(n):
            idx = action[j]
            if kind == KIND_POSITION:
                level = idx - 1.0 if allow_short else idx
            else:
                prev_level = np.rint(target[j] / unit)
                level = min(max(prev_level + (idx - 1.0), params[E_LOW_LEVEL]), 1.0)
            target[j] = level * unit
        return True
    size = action.shape[0]
    for j in range(size):
        if not abs(action[j]) <= 1.0 + _TOL:  # also rejects NaN
            return False
    if kind == KIND_CONTINUOUS:
        lower = -1.0 if allow_short else 0.0
        for j in range(n):
            target[j] = min(max(action[j], lower), 1.0) * max_pos
    elif kind in (KIND_SIMPLEX, KIND_L1_BALL):
        v = np.empty(size)
        w_all = np.empty(size)
        if kind == KIND_SIMPLEX:
            for j in range(size):
                v[j] = (action[j] + 1.0) * 0.5
            _project_simplex(v, 1.0, w_all)
        else:
            gross_v = 0.0
            for j in range(size):
                v[j] = action[j] * max_lev
                gross_v += abs(v[j])
            if gross_v <= max_lev:
                for j in range(size):
                    w_all[j] = v[j]
            else:
                for j in range(size):
                    w_all[j] = abs(v[j])
                _project_simplex(w_all.copy(), max_lev, w_all)
                for j in range(size):
                    w_all[j] = np.sign(v[j]) * w_all[j]
        for j in range(n):
            target[j] = min(max(w_all[j], -max_pos), max_pos)
    else:  # softmax over the assets (and cash)
        scale = params[E_SOFTMAX_SCALE]
        z_max = -math.inf
        for j in range(size):
            z_max = max(z_max, scale * action[j])
        total = 0.0
        for j in range(size):
            total += np.exp(scale * action[j] - z_max)
        for j in range(n):
            w = np.exp(scale * action[j] - z_max) / total
            target[j] = min(max(w, -max_pos), max_pos)
    gross = 0.0
    for j in range(n):
        gross += abs(target[j])
    factor = min(1.0, max_lev / max(gross, 1e-300))
    for j in range(n):
        target[j] = target[j] * factor
    return True


@jit
def _reward(
    prev_equity: float, equity: float, traded: float, acct: FloatArray, params: FloatArray
) -> float:
    """``RewardState.step`` for one row (updates the DSR moments and the peak in ``acct``)."""
    safe_prev = max(prev_equity, _TINY)
    ret = equity / safe_prev - 1.0
    total = 0.0
    if params[E_PNL] != 0.0:
        total += params[E_PNL] * (equity - prev_equity) / params[E_INITIAL_CASH]
    if params[E_LOG] != 0.0:
        total += params[E_LOG] * np.log(max(equity, _TINY) / safe_prev)
    if params[E_DSR] != 0.0:
        mean = acct[A_MEAN]
        second = acct[A_SECOND]
        d_mean = ret - mean
        d_second = ret * ret - second
        var = second - mean * mean
        if var > _TINY:
            total += params[E_DSR] * ((second * d_mean - 0.5 * mean * d_second) / var**1.5)
        else:
            total += params[E_DSR] * 0.0
        acct[A_MEAN] = mean + params[E_ETA] * d_mean
        acct[A_SECOND] = second + params[E_ETA] * d_second
    if params[E_DOWNSIDE] != 0.0:
        neg = min(ret, 0.0)
        total -= params[E_DOWNSIDE] * neg * neg
    acct[A_PEAK] = max(acct[A_PEAK], equity)
    if params[E_DRAWDOWN] != 0.0:
        total -= params[E_DRAWDOWN] * (1.0 - equity / acct[A_PEAK])
    if params[E_TURNOVER] != 0.0:
        total -= params[E_TURNOVER] * traded / safe_prev
    if params[E_SCALE] != 1.0:
        total *= params[E_SCALE]
    return total


@jit
def env_step(
    ints: IntArray,
    action: FloatArray,
    market: FloatArray,
    assets: FloatArray,
    acct: FloatArray,
    params: FloatArray,
    padded: np.ndarray,
    obs: np.ndarray,
    pending: FloatArray,
) -> tuple[int, float, bool, bool, float, int, float]:
    """One step of one env; returns ``(code, reward, terminated, truncated, equity, new decision
    bar, turnover)``.

    ``code`` is ``OK``, ``BAD_ACTION`` (nothing was changed: the caller raises the interpreter's
    error) or ``BAD_EQUITY`` (the equity after the fill is not finite). With ``params[E_OBS]``
    the next flat observation is written into ``obs`` (float32, from the padded windows).
    ``pending`` (delay, N) holds the decided targets not yet released (``sim.latency.push_target``
    for one row): with a delay the step trades the oldest of them and queues the new one.
    """
    n = assets.shape[1]
    target = assets[S_TARGET]
    shares = assets[S_SHARES]
    old = assets[S_OLD]
    t = ints[I_T]
    if not _map_action(action, target, params):
        return BAD_ACTION, 0.0, False, False, 0.0, t, 0.0
    for j in range(n):
        old[j] = shares[j]
    released = target
    delay = pending.shape[0]
    if delay > 0:
        released = assets[S_RELEASED]
        for j in range(n):
            released[j] = pending[0, j]
        for k in range(delay - 1):
            for j in range(n):
                pending[k, j] = pending[k + 1, j]
        for j in range(n):
            pending[delay - 1, j] = target[j]
    out = assets[S_OUT:]
    cash, prev_equity, equity, _borrow, _margin, _interest = account_step(
        shares, acct[A_CASH], released, market, t, params, out
    )
    acct[A_CASH] = cash
    basis = assets[S_BASIS]
    traded_value = 0.0
    for j in range(n):
        traded = out[OUT_TRADED, j]
        fill = out[OUT_FILL, j] if traded != 0.0 else 0.0
        traded_value += abs(traded * fill)
        # average entry price: adds average in, reductions keep it, flips reset it
        o = old[j]
        s = shares[j]
        if s == 0.0:
            basis[j] = 0.0
        elif o * s > 0.0:
            if abs(s) > abs(o):
                basis[j] = (o * basis[j] + (s - o) * fill) / s
        else:
            basis[j] = fill
    if not math.isfinite(equity):
        return BAD_EQUITY, 0.0, False, False, equity, t, 0.0
    reward = _reward(prev_equity, equity, traded_value, acct, params)
    t1 = t + 1
    mark1 = market[M_MARK, t1]
    open_pnl = 0.0
    for j in range(n):
        s = shares[j]
        if s != 0.0:
            open_pnl += s * (mark1[j] - basis[j])
        assets[S_WEIGHTS, j] = out[OUT_WEIGHTS, j]
    safe_equity = equity if equity > 0.0 else 1.0
    acct[A_UPNL] = open_pnl / safe_equity
    acct[A_CASH_FRACTION] = cash / safe_equity
    acct[A_EQUITY] = equity
    acct[A_TURNOVER] = traded_value / max(prev_equity, 1e-12)
    ints[I_T] = t1
    ints[I_STEPS] += 1
    terminated = equity <= params[E_RUIN]
    if params[E_HAS_MAX_DD] > 0.0:
        terminated = terminated or (1.0 - equity / acct[A_PEAK]) >= params[E_MAX_DD]
    truncated = t1 > ints[I_STOP] and not terminated
    if params[E_OBS] > 0.0:
        row = padded[t1 - int(params[E_WINDOW]) + 1]
        k = row.shape[0] - n - 2
        for j in range(k):
            obs[j] = row[j]
        for j in range(n):
            obs[k + j] = assets[S_WEIGHTS, j]
        obs[k + n] = acct[A_CASH_FRACTION]
        obs[k + n + 1] = acct[A_UPNL]
    return OK, reward, terminated, truncated, equity, t1, acct[A_TURNOVER]


__all__ = [
    "BAD_ACTION",
    "BAD_EQUITY",
    "KIND_CONTINUOUS",
    "KIND_POSITION",
    "KIND_SOFTMAX",
    "KIND_TARGET",
    "KIND_TRADE",
    "N_ACCT",
    "N_ASSET_ROWS",
    "N_INTS",
    "N_PARAMS",
    "OK",
    "env_step",
]
