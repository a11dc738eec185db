"""The compiled env step: action -> target weights -> ``sim`` step -> reward -> observation.

``TradingCore`` runs every step through ``batch_env_step`` when numba is available, for one row
(``TradingEnv``) and for a batch (``BatchedTradingVecEnv``) alike: the action interpreter
(``_map_action``: discrete, continuous, softmax and simplex/L1-ball weights; an interpreter it
does not know, e.g. a wrapped one, maps the action in Python and passes the targets), then per
row ``env_step_row``: the simulator step (:func:`tradeforge.sim.kernel.account_step`, the
compiled one-account copy of ``tradeforge.sim.step``), the latency queue
(``tradeforge.sim.latency``), the average entry price, the reward terms of ``RewardState``, the
termination rules and the flat observation. Each part repeats the numpy code of the batched path
operation by operation; tests check the two paths equal (to a few units in the last place:
numba's ``exp``/``log`` and sums may round differently from numpy's on some CPUs) for every
action kind and reward term with costs switched on, and every row of a batch equal to a single
env bit for bit.

The compiled code is cached on disk under a key that includes a digest of this file and of every
module it imports (``tradeforge.sim.jit``), so an edit of ``tradeforge/sim/kernel.py`` also
recompiles ``batch_env_step``.

State lives in three packed arrays that ``TradingCore`` exposes through views (``ints``: decision
bar, last bar, steps; ``acct``: the ``A_*`` scalars; ``assets``: the ``S_*`` rows of length N),
each with a leading batch axis, plus the (B, delay, N) queue of decided targets not yet
released to the market.
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


@jit(inline="always")
def _map_action(
    actions: FloatArray, row: int, target: FloatArray, trow: int, params: FloatArray
) -> bool:
    """Write the target weights of ``actions[row]`` into ``target[trow]``; False (and nothing
    written) if the action is invalid.

    Mirrors ``DiscreteActions``, ``ContinuousActions`` and ``WeightsActions`` (softmax, simplex,
    L1 ball) of ``tradeforge.envs.actions`` for one row.
    """
    kind = int(params[E_KIND])
    n = target.shape[1]
    if kind == KIND_TARGET:
        return True
    max_pos = params[P_MAX_POSITION]
    max_lev = params[P_MAX_LEVERAGE]
    allow_short = params[P_ALLOW_SHORT] > 0.0
    if kind in (KIND_POSITION, KIND_TRADE):
        n_levels = params[E_N_LEVELS]
        unit = params[E_UNIT]
        for j in range(n):
            a = actions[row, j]
            if not (a == math.floor(a) and a >= 0.0 and a < n_levels):
                return False
        for j in range(n):
            idx = actions[row, j]
            if kind == KIND_POSITION:
                level = idx - 1.0 if allow_short else idx
            else:
                prev_level = np.rint(target[trow, j] / unit)
                level = min(max(prev_level + (idx - 1.0), params[E_LOW_LEVEL]), 1.0)
            target[trow, j] = level * unit
        return True
    size = actions.shape[1]
    for j in range(size):
        if not abs(actions[row, j]) <= 1.0 + _TOL:  # also rejects NaN
            return False
    if kind == KIND_CONTINUOUS:
        lower = -1.0 if allow_short else 0.0
        for j in range(n):
            target[trow, j] = min(max(actions[row, j], lower), 1.0) * max_pos
    elif kind in (KIND_SIMPLEX, KIND_L1_BALL):
        v = np.empty(size)
        w_all = np.empty(size)
        if kind == KIND_SIMPLEX:
            for j in range(size):
                v[j] = (actions[row, j] + 1.0) * 0.5
            _project_simplex(v, 1.0, w_all)
        else:
            gross_v = 0.0
            for j in range(size):
                v[j] = actions[row, j] * max_lev
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
            target[trow, j] = min(max(w_all[j], -max_pos), max_pos)
    else:  # softmax over the assets (and cash)
        scale = params[E_SOFTMAX_SCALE]
        z_max = -math.inf
        for j in range(size):
            z_max = max(z_max, scale * actions[row, j])
        total = 0.0
        for j in range(size):
            total += np.exp(scale * actions[row, j] - z_max)
        for j in range(n):
            w = np.exp(scale * actions[row, j] - z_max) / total
            target[trow, j] = min(max(w, -max_pos), max_pos)
    gross = 0.0
    for j in range(n):
        gross += abs(target[trow, j])
    factor = min(1.0, max_lev / max(gross, 1e-300))
    for j in range(n):
        target[trow, j] = target[trow, j] * factor
    return True


@jit(inline="always")
def _reward(
    prev_equity: float,
    equity: float,
    traded: float,
    acct: FloatArray,
    b: int,
    params: FloatArray,
) -> float:
    """``RewardState.step`` for row ``b`` (updates its DSR moments and peak in ``acct[b]``)."""
    safe_prev = max(prev_equity, _TINY)
    ret = equity / safe_prev - 1.0
    total = 0.0
    if params[E_PNL] != 0.0:
        total += params[E_PNL] * (equity - prev_equity) / params[E_INITIAL_CASH]
    if params[E_LOG] != 0.0:
        total += params[E_LOG] * np.log(max(equity, _TINY) / safe_prev)
    if params[E_DSR] != 0.0:
        mean = acct[b, A_MEAN]
        second = acct[b, A_SECOND]
        d_mean = ret - mean
        d_second = ret * ret - second
        var = second - mean * mean
        if var > _TINY:
            total += params[E_DSR] * ((second * d_mean - 0.5 * mean * d_second) / var**1.5)
        else:
            total += params[E_DSR] * 0.0
        acct[b, A_MEAN] = mean + params[E_ETA] * d_mean
        acct[b, A_SECOND] = second + params[E_ETA] * d_second
    if params[E_DOWNSIDE] != 0.0:
        neg = min(ret, 0.0)
        total -= params[E_DOWNSIDE] * neg * neg
    acct[b, A_PEAK] = max(acct[b, A_PEAK], equity)
    if params[E_DRAWDOWN] != 0.0:
        total -= params[E_DRAWDOWN] * (1.0 - equity / acct[b, A_PEAK])
    if params[E_TURNOVER] != 0.0:
        total -= params[E_TURNOVER] * traded / safe_prev
    if params[E_SCALE] != 1.0:
        total *= params[E_SCALE]
    return total


@jit(inline="always")
def env_step_row(
    b: int,
    ints: IntArray,
    market: FloatArray,
    assets: FloatArray,
    acct: FloatArray,
    params: FloatArray,
    pending: FloatArray,
) -> tuple[int, float, bool, bool, float]:
    """One step of row ``b`` whose target (``assets[b, S_TARGET]``) is already decided; returns
    ``(code, reward, terminated, truncated, equity)``.

    ``code`` is ``OK`` or ``BAD_EQUITY`` (the equity after the fill is not finite; the decision
    bar is then not advanced). ``pending[b]`` (delay, N) holds the decided
    targets not yet released (``sim.latency.push_target`` for one row): with a delay the step
    trades the oldest of them and queues the new one. Every array is indexed in place (no row
    views: they would cost reference counting on every call).
    """
    n = assets.shape[2]
    t = ints[b, I_T]
    for j in range(n):
        assets[b, S_OLD, j] = assets[b, S_SHARES, j]
    released = S_TARGET
    delay = pending.shape[1]
    if delay > 0:
        released = S_RELEASED
        for j in range(n):
            assets[b, S_RELEASED, j] = pending[b, 0, j]
        for k in range(delay - 1):
            for j in range(n):
                pending[b, k, j] = pending[b, k + 1, j]
        for j in range(n):
            pending[b, delay - 1, j] = assets[b, S_TARGET, j]
    cash, prev_equity, equity, _borrow, _margin, _interest = account_step(
        assets[b, S_SHARES],
        acct[b, A_CASH],
        assets[b, released],
        market,
        t,
        params,
        assets[b, S_OUT:],
    )
    acct[b, A_CASH] = cash
    traded_value = 0.0
    for j in range(n):
        traded = assets[b, S_OUT + OUT_TRADED, j]
        fill = assets[b, S_OUT + OUT_FILL, j] if traded != 0.0 else 0.0
        traded_value += abs(traded * fill)
        # average entry price: adds average in, reductions keep it, flips reset it
        o = assets[b, S_OLD, j]
        s = assets[b, S_SHARES, j]
        if s == 0.0:
            assets[b, S_BASIS, j] = 0.0
        elif o * s > 0.0:
            if abs(s) > abs(o):
                assets[b, S_BASIS, j] = (o * assets[b, S_BASIS, j] + (s - o) * fill) / s
        else:
            assets[b, S_BASIS, j] = fill
    if not math.isfinite(equity):
        return BAD_EQUITY, 0.0, False, False, equity
    reward = _reward(prev_equity, equity, traded_value, acct, b, params)
    t1 = t + 1
    open_pnl = 0.0
    for j in range(n):
        s = assets[b, S_SHARES, j]
        if s != 0.0:
            open_pnl += s * (market[M_MARK, t1, j] - assets[b, S_BASIS, j])
        assets[b, S_WEIGHTS, j] = assets[b, S_OUT + OUT_WEIGHTS, j]
    safe_equity = equity if equity > 0.0 else 1.0
    acct[b, A_UPNL] = open_pnl / safe_equity
    acct[b, A_CASH_FRACTION] = cash / safe_equity
    acct[b, A_EQUITY] = equity
    acct[b, A_TURNOVER] = traded_value / max(prev_equity, 1e-12)
    ints[b, I_T] = t1
    ints[b, I_STEPS] += 1
    terminated = equity <= params[E_RUIN]
    if params[E_HAS_MAX_DD] > 0.0:
        terminated = terminated or (1.0 - equity / acct[b, A_PEAK]) >= params[E_MAX_DD]
    truncated = t1 > ints[b, I_STOP] and not terminated
    return OK, reward, terminated, truncated, equity


@jit(inline="always")
def _observe_row(
    b: int,
    ints: IntArray,
    assets: FloatArray,
    acct: FloatArray,
    params: FloatArray,
    padded: np.ndarray,
    obs: np.ndarray,
) -> None:
    """The flat observation of row ``b`` at its decision bar into ``obs[b]`` (float32): the
    padded feature window, then the held weights, cash fraction and unrealized P&L."""
    n = assets.shape[2]
    r = ints[b, I_T] - int(params[E_WINDOW]) + 1
    k = padded.shape[1] - n - 2
    src = padded[r]
    dst = obs[b]
    for j in range(k):
        dst[j] = src[j]
    for j in range(n):
        dst[k + j] = assets[b, S_WEIGHTS, j]
    dst[k + n] = acct[b, A_CASH_FRACTION]
    dst[k + n + 1] = acct[b, A_UPNL]


@jit
def batch_env_step(
    ints: IntArray,
    actions: FloatArray,
    market: FloatArray,
    assets: FloatArray,
    acct: FloatArray,
    params: FloatArray,
    padded: np.ndarray,
    obs: np.ndarray,
    pending: FloatArray,
    scratch: FloatArray,
    reward: FloatArray,
    terminated: np.ndarray,
    truncated: np.ndarray,
) -> tuple[int, int, float]:
    """One step of B envs (B = 1 for ``TradingEnv``): each action mapped to target weights, then
    ``env_step_row`` for each row in turn, in one compiled call.

    Packed state with a leading batch axis: ``ints`` (B, N_INTS), ``acct`` (B, N_ACCT),
    ``assets`` (B, N_ASSET_ROWS, N), ``pending`` (B, delay, N), ``actions`` (B, A) float64,
    ``obs`` (B, size) float32 (written when ``params[E_OBS]``, else any (B, k) array),
    ``scratch`` (B, N). Every action is mapped (into ``scratch``) before any row steps, so an
    invalid action changes nothing; with ``params[E_KIND] == KIND_TARGET`` the targets were set
    in Python. Writes ``reward``, ``terminated``, ``truncated`` (B,). Returns
    ``(code, row, equity)``: ``OK`` (row -1), ``BAD_ACTION`` with the first bad row, or
    ``BAD_EQUITY`` with the row and its equity (the rows before it have stepped).
    """
    n_batch = ints.shape[0]
    n = assets.shape[2]
    if int(params[E_KIND]) != KIND_TARGET:
        for b in range(n_batch):
            for j in range(n):
                scratch[b, j] = assets[b, S_TARGET, j]
            if not _map_action(actions, b, scratch, b, params):
                return BAD_ACTION, b, 0.0
        for b in range(n_batch):
            for j in range(n):
                assets[b, S_TARGET, j] = scratch[b, j]
    for b in range(n_batch):
        code, r, term, trunc, equity = env_step_row(b, ints, market, assets, acct, params, pending)
        if code != OK:
            return code, b, equity
        reward[b] = r
        terminated[b] = term
        truncated[b] = trunc
    # the observations in a second pass: streaming the windows through the cache between the
    # steps of the rows would evict the market and state rows the steps read (much slower)
    if params[E_OBS] > 0.0:
        for b in range(n_batch):
            _observe_row(b, ints, assets, acct, params, padded, obs)
    return OK, -1, 0.0


@jit
def vec_env_step(
    ints: IntArray,
    actions: FloatArray,
    market: FloatArray,
    assets: FloatArray,
    acct: FloatArray,
    params: FloatArray,
    padded: np.ndarray,
    obs: np.ndarray,
    pending: FloatArray,
    scratch: FloatArray,
    reward: FloatArray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    returns: FloatArray,
    lengths: IntArray,
    reward32: np.ndarray,
    done: np.ndarray,
) -> tuple[int, int, float, int]:
    """``batch_env_step`` plus the per-step bookkeeping of ``BatchedTradingVecEnv`` in the same
    compiled call: each row's reward added to its episode return (``returns``, float64) and its
    episode length (``lengths``) counted, the reward as float32 (``reward32``), ``done`` =
    terminated or truncated. Returns ``(code, row, equity, n_done)``: ``batch_env_step``'s
    triple (nothing of the bookkeeping is done unless ``code`` is ``OK``) and how many rows are
    done.
    """
    code, row, equity = batch_env_step(
        ints,
        actions,
        market,
        assets,
        acct,
        params,
        padded,
        obs,
        pending,
        scratch,
        reward,
        terminated,
        truncated,
    )
    if code != OK:
        return code, row, equity, 0
    n_done = 0
    for b in range(ints.shape[0]):
        r = reward[b]
        returns[b] += r
        lengths[b] += 1
        reward32[b] = r
        d = terminated[b] or truncated[b]
        done[b] = d
        if d:
            n_done += 1
    return OK, -1, 0.0, n_done


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
    "batch_env_step",
    "env_step_row",
    "vec_env_step",
]
