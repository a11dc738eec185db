"""Hard risk limits on target weights and their exact projection (pure numpy).

The feasible set of :class:`RiskLimits` is::

    {w : |w_i| <= max_position, sum |w_i| <= max_gross, sum |w - w_prev| <= max_turnover}

(and ``w >= 0`` when ``long_only``), where ``w_prev`` are the previous, already feasible,
targets. One copy of this code serves every consumer of targets: the RL wrappers in
``tradeforge.agents.safe``, the backtester and the baselines (:func:`project_path` over a whole
``(T, N)`` weights path) and the execution engine.

* :func:`project_weights`: one decision (``(N,)``) or a batch of independent ones (``(B, N)``).
  Position and gross limits: the Euclidean projection onto their intersection. Turnover: the
  result moves from the previous weights towards that projection only as far as
  ``max_turnover`` allows.
* :func:`project_path`: a ``(T, N)`` path, each row projected given the previously projected row
  (turnover makes this path-dependent); NaN means "hold" as in ``backtest.run_backtest``.
* :func:`violations`: which limits a raw target breaks (for counting, not for enforcing).
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from tradeforge.core.config import FrozenConfig
from tradeforge.core.errors import RiskError
from tradeforge.core.types import BoolArray, FloatArray

_EPS = 1e-12
_BISECTION_STEPS = 60
_HOLD_TOL = 1e-12  # a held (NaN) cell stays NaN when projection moves it by at most this


class RiskLimits(FrozenConfig):
    """Hard limits on target weights; None disables a limit.

    ``max_position`` bounds each ``|w_i|``, ``max_gross`` bounds ``sum |w_i|``,
    ``max_turnover`` bounds ``sum |w_t - w_{t-1}|`` per decision (``w_{t-1}`` being the
    previous, already feasible, targets); ``long_only`` forbids negative weights.
    """

    max_position: float | None = Field(default=None, gt=0.0)
    max_gross: float | None = Field(default=None, gt=0.0)
    max_turnover: float | None = Field(default=None, gt=0.0)
    long_only: bool = False


def _box(limits: RiskLimits) -> tuple[float, float]:
    hi = math.inf if limits.max_position is None else float(limits.max_position)
    lo = 0.0 if limits.long_only else -hi
    return lo, hi


def _shrink(v: FloatArray, theta: FloatArray, lo: float, hi: float) -> FloatArray:
    """Soft-threshold by ``theta`` (per row) then clip to the box ``[lo, hi]``."""
    if lo >= 0.0:
        out: FloatArray = np.clip(v - theta[:, None], 0.0, hi)
        return out
    out = np.sign(v) * np.clip(np.abs(v) - theta[:, None], 0.0, hi)
    return out


def _project_static(v: FloatArray, limits: RiskLimits) -> FloatArray:
    """Euclidean projection of each row of ``v`` (B, N), finite, onto the box intersected with
    the gross (L1) ball: the position, long-only and gross limits, not turnover."""
    lo, hi = _box(limits)
    w: FloatArray = np.clip(v, lo, hi)
    if limits.max_gross is None:
        return w
    gross_cap = float(limits.max_gross)
    gross = np.abs(w).sum(axis=1)
    over = gross > gross_cap
    if not over.any():
        return w
    rows = v[over]
    low = np.zeros(rows.shape[0])
    high = np.abs(rows).max(axis=1)
    for _ in range(_BISECTION_STEPS):  # bisection on the threshold: gross(theta) non-increasing
        mid = 0.5 * (low + high)
        g = np.abs(_shrink(rows, mid, lo, hi)).sum(axis=1)
        above = g > gross_cap
        low = np.where(above, mid, low)
        high = np.where(above, high, mid)
    proj = _shrink(rows, high, lo, hi)
    g = np.abs(proj).sum(axis=1)
    proj *= np.minimum(1.0, gross_cap / np.maximum(g, _EPS))[:, None]
    w[over] = proj
    return w


def project_weights(
    target: FloatArray, previous: FloatArray | None, limits: RiskLimits
) -> FloatArray:
    """Map target weights ``(N,)`` or ``(B, N)`` onto the feasible set of ``limits``.

    Position and gross limits: the Euclidean projection onto their intersection. Turnover (only
    when ``previous`` is given): the result moves from the previous weights (themselves first
    projected onto the position and gross limits) towards that projection only as far as
    ``max_turnover`` allows; the set is convex, so the limits above still hold. Non-finite
    targets are treated as 0. ``previous`` is ``(N,)`` or ``(B, N)``, broadcast to the targets.
    """
    raw = np.asarray(target, dtype=np.float64)
    single = raw.ndim == 1
    v = np.nan_to_num(np.atleast_2d(raw), nan=0.0, posinf=0.0, neginf=0.0)
    w = _project_static(v, limits)
    if limits.max_turnover is not None and previous is not None:
        prev = np.atleast_2d(np.asarray(previous, dtype=np.float64))
        if prev.shape[-1] != w.shape[-1]:
            raise RiskError(
                f"previous weights have {prev.shape[-1]} assets; expected {w.shape[-1]} like the "
                "targets"
            )
        prev = _project_static(np.nan_to_num(np.broadcast_to(prev, w.shape).copy()), limits)
        step = w - prev
        turnover = np.abs(step).sum(axis=1)
        alpha = np.minimum(1.0, float(limits.max_turnover) / np.maximum(turnover, _EPS))
        w = prev + alpha[:, None] * step
    out: FloatArray = w[0] if single else w
    return out


def project_path(
    weights: FloatArray, limits: RiskLimits, initial: FloatArray | None = None
) -> FloatArray:
    """Project a ``(T, N)`` target-weights path row by row, each given the previous one.

    Row ``t`` is projected with :func:`project_weights` against the last projected row (the
    reference for ``max_turnover``); before the first decision the reference is ``initial``
    (first projected onto the position and gross limits), or cash (zeros) when None, as a
    backtest starts. NaN means "hold", as in ``backtest.run_backtest``:

    * an all-NaN row stays all-NaN (no decision, nothing traded) and leaves the reference as is;
    * a NaN cell is taken as its reference weight for the projection and stays NaN in the output
      when the projection leaves it there (within 1e-12); when the limits need that
      asset to move (e.g. gross over the limit), the cell gets the projected weight.

    Each row gives what :func:`project_weights` gives for it against the reference. Turnover is
    measured between targets, not the weights held after prices moved (a projection without
    prices cannot know those). Rows without NaN cells get their position and gross projection
    in one batch; only the turnover step (a few microseconds a row) and the projection of rows
    with held cells (about a millisecond each) run bar by bar. Raises :class:`RiskError` for a
    non-2-D path, an ``initial`` of the wrong shape or infinite weights.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2:
        raise RiskError(f"weights have shape {w.shape}; expected a (bars, assets) path")
    n = w.shape[1]
    if initial is None:
        reference = np.zeros(n)
    else:
        start = np.asarray(initial, dtype=np.float64)
        if start.shape != (n,):
            raise RiskError(f"initial weights have shape {start.shape}; expected ({n},)")
        if not np.isfinite(start).all():
            raise RiskError(f"initial weights = {start.tolist()}; expected finite weights")
        reference = _project_static(start[None, :], limits)[0]
    bad = np.argwhere(np.isinf(w))
    if bad.size:
        row, col = (int(x) for x in bad[0])
        raise RiskError(
            f"weights[{row}, {col}] = {w[row, col]}; expected a finite weight or NaN (hold)"
        )
    out = np.full_like(w, np.nan)
    nan: BoolArray = np.isnan(w)
    decided: BoolArray = np.asarray(~nan.all(axis=1), dtype=np.bool_)  # not an all-NaN row
    full: BoolArray = np.asarray(~nan.any(axis=1), dtype=np.bool_)  # no NaN cell
    # rows without a held cell do not depend on the path before the turnover step: one batch
    static = np.full_like(w, np.nan)
    if full.any():
        static[full] = _project_static(w[full], limits)
    if limits.max_turnover is None and not np.any(decided & ~full):
        out[full] = static[full]
        return out
    cap = math.inf if limits.max_turnover is None else float(limits.max_turnover)
    for t in np.flatnonzero(decided):
        held = nan[t]
        if bool(full[t]):
            target = static[t]
        else:
            target = _project_static(np.where(held, reference, w[t])[None, :], limits)[0]
        step = target - reference
        turnover = float(np.abs(step).sum())
        projected = reference + min(1.0, cap / max(turnover, _EPS)) * step
        row = projected.copy()
        row[held & (np.abs(projected - reference) <= _HOLD_TOL)] = np.nan
        out[t] = row
        reference = projected
    return out


def violations(
    target: FloatArray, previous: FloatArray | None, limits: RiskLimits, tol: float = 1e-9
) -> dict[str, int]:
    """Which limits the raw target ``(N,)`` breaks: ``{"position": 0|1, "gross": ..., ...}``.

    ``position`` also counts negative weights under ``long_only``; ``turnover`` is measured from
    ``previous`` (0 when it is None). NaN targets count as 0.
    """
    w = np.nan_to_num(np.asarray(target, dtype=np.float64).reshape(-1))
    lo, hi = _box(limits)
    out = {
        "position": int(bool(np.any(w > hi + tol) or np.any(w < lo - tol))),
        "gross": int(limits.max_gross is not None and np.abs(w).sum() > limits.max_gross + tol),
        "turnover": 0,
    }
    if limits.max_turnover is not None and previous is not None:
        prev = np.asarray(previous, dtype=np.float64).reshape(-1)
        out["turnover"] = int(np.abs(w - prev).sum() > limits.max_turnover + tol)
    return out


__all__ = [
    "RiskError",
    "RiskLimits",
    "project_path",
    "project_weights",
    "violations",
]
