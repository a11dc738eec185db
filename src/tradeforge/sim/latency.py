"""Latency: targets reach the market ``SimConfig.delay_bars`` bars after they were decided.

The simulator step always fills the target it is given at the next bar. A delay of ``d`` bars
is modelled in front of it: the target decided at close[t] is handed to the step of decision bar
``t + d`` (sized at close[t + d] with the equity and prices of then, filled at bar t + 1 + d).
Until ``d`` decisions have been made the step receives NaN targets (hold: nothing trades).

Two equivalent forms, one per caller:

* :func:`delay_targets` shifts a whole (T, N) target path (the backtester);
* :func:`push_target` keeps a queue of the last ``d`` decisions per batch row and returns the
  target released now (the envs, one step at a time; the compiled env kernel repeats it).
"""

from __future__ import annotations

import numpy as np

from tradeforge.core.errors import SimulationError
from tradeforge.core.types import BoolArray, FloatArray


def delay_targets(weights: FloatArray, delay: int, start: int = 0) -> FloatArray:
    """The targets released at each bar for (T, N) ``weights`` decided at each bar.

    Row ``t`` of the result is row ``t - delay`` of ``weights``; rows before ``start + delay``
    are NaN (hold), so no decision made before ``start`` (outside the run) is ever released.
    """
    if delay < 0:
        raise SimulationError(f"delay_bars = {delay}; expected an integer >= 0")
    w = np.asarray(weights, dtype=np.float64)
    if start < 0:
        raise SimulationError(f"delay_targets start = {start}; expected >= 0")
    out = np.full_like(w, np.nan)
    first = start + delay
    if first < w.shape[0]:
        out[first:] = w[start : w.shape[0] - delay]
    return out


def empty_queue(n_batch: int, delay: int, n_assets: int) -> FloatArray:
    """A (B, delay, N) queue of NaN targets (nothing decided yet)."""
    if delay < 0:
        raise SimulationError(f"delay_bars = {delay}; expected an integer >= 0")
    return np.full((n_batch, delay, n_assets), np.nan)


def push_target(queue: FloatArray, target: FloatArray) -> FloatArray:
    """Append the (B, N) decided ``target`` to the (B, d, N) ``queue`` (in place) and return the
    (B, N) target released now: the oldest entry, or ``target`` itself when d = 0."""
    if queue.shape[1] == 0:
        return target
    released: FloatArray = queue[:, 0].copy()
    queue[:, :-1] = queue[:, 1:]
    queue[:, -1] = target
    return released


def clear_rows(queue: FloatArray, rows: BoolArray) -> None:
    """Forget the pending targets of the rows in the (B,) mask (a new episode starts there)."""
    queue[rows] = np.nan


__all__ = ["clear_rows", "delay_targets", "empty_queue", "push_target"]
