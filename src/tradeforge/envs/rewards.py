"""Composable rewards, computed for a batch of accounts from the simulator's equity.

The reward for the action decided at bar ``t`` uses the equity at the close of ``t`` (before) and
at the close of ``t + 1`` (after the fill and all costs), so it never anticipates the future.

Differential Sharpe ratio (Moody & Saffell): with exponential moving estimates ``A`` (mean) and
``B`` (second moment) of the simple return ``R`` and adaptation rate ``eta``::

    D_t = (B_{t-1} * dA - 0.5 * A_{t-1} * dB) / (B_{t-1} - A_{t-1}^2) ** 1.5,
    dA = R_t - A_{t-1},  dB = R_t^2 - B_{t-1},

then ``A += eta * dA`` and ``B += eta * dB``. While the variance estimate is still ~0 (the start
of an episode) the term is 0.
"""

from __future__ import annotations

import numpy as np

from tradeforge.core.types import BoolArray, FloatArray
from tradeforge.envs.config import RewardConfig

_TINY = 1e-12


class RewardState:
    """Per-row running statistics (DSR moments, equity peak) for a batch of B episodes."""

    def __init__(self, config: RewardConfig, n_batch: int, initial_cash: float) -> None:
        self.config = config
        self.initial_cash = initial_cash
        self.mean = np.zeros(n_batch)
        self.second = np.zeros(n_batch)
        self.peak = np.full(n_batch, initial_cash)

    def reset_rows(self, rows: BoolArray) -> None:
        """Start fresh statistics for the rows in the boolean mask."""
        self.mean[rows] = 0.0
        self.second[rows] = 0.0
        self.peak[rows] = self.initial_cash

    def drawdown(self, equity: FloatArray) -> FloatArray:
        """Drawdown from each row's peak (peak must already include ``equity``)."""
        out: FloatArray = 1.0 - equity / self.peak
        return out

    def step(self, prev_equity: FloatArray, equity: FloatArray, traded: FloatArray) -> FloatArray:
        """Reward per row for one step and update the running statistics.

        ``traded`` is the traded notional per row (sum over assets of |shares * fill price|).
        """
        cfg = self.config
        safe_prev = np.maximum(prev_equity, _TINY)
        ret = equity / safe_prev - 1.0
        total = np.zeros_like(ret)
        if cfg.pnl:
            total += cfg.pnl * (equity - prev_equity) / self.initial_cash
        if cfg.log_return:
            total += cfg.log_return * np.log(np.maximum(equity, _TINY) / safe_prev)
        if cfg.dsr:
            d_mean = ret - self.mean
            d_second = ret * ret - self.second
            var = self.second - self.mean * self.mean
            ok = var > _TINY
            dsr = (self.second * d_mean - 0.5 * self.mean * d_second) / np.where(
                ok, var, 1.0
            ) ** 1.5
            total += cfg.dsr * np.where(ok, dsr, 0.0)
            self.mean += cfg.dsr_eta * d_mean
            self.second += cfg.dsr_eta * d_second
        if cfg.downside:
            neg = np.minimum(ret, 0.0)
            total -= cfg.downside * neg * neg
        np.maximum(self.peak, equity, out=self.peak)
        if cfg.drawdown:
            total -= cfg.drawdown * self.drawdown(equity)
        if cfg.turnover:
            total -= cfg.turnover * traded / safe_prev
        if cfg.scale != 1.0:
            total *= cfg.scale
        return total


__all__ = ["RewardState"]
