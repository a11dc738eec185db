"""Composable rewards, computed for a batch of accounts from the simulator's equity.

The reward for the action decided at bar ``t`` uses the equity at the close of ``t`` (before) and
at the close of ``t + 1`` (after the fill and all costs), so it never anticipates the future.

Differential Sharpe ratio (Moody & Saffell): with exponential moving estimates ``A`` (mean) and
``B`` (second moment) of the simple return ``R`` and adaptation rate ``eta``::

    D_t = (B_{t-1} * dA - 0.5 * A_{t-1} * dB) / (B_{t-1} - A_{t-1}^2) ** 1.5,
    dA = R_t - A_{t-1},  dB = R_t^2 - B_{t-1},

then ``A += eta * dA`` and ``B += eta * dB``. While the variance estimate is still ~0 (the start
of an episode) the term is 0.

Benchmark-relative terms (``RewardConfig.excess_*``) compare the account with a frictionless
benchmark account (:class:`BenchmarkAccount`) that starts each episode in cash like the env's
account, sizes its targets with the close of ``t`` and fills at the same fill price of bar
``t + 1`` (so a policy that holds the benchmark with zero costs earns exactly 0 excess): the
benchmark's step uses the same bars, and nothing later, as the account's.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from tradeforge.core.errors import SimulationError
from tradeforge.core.types import BoolArray, FloatArray, IntArray
from tradeforge.envs.config import RewardConfig

_TINY = 1e-12


class BenchmarkAccount:
    """B frictionless benchmark accounts over the env's prices.

    ``mark`` (T, N): the closes the env marks at; ``fill`` (T, N): the prices its orders fill at.
    ``kind``: ``equal_weight`` (target 1/N of the equity at every step) or ``hold`` (1/N at the
    first step of an episode, then the same shares). Each step repeats the simulator's
    arithmetic without costs, carry or limits: shares ``w * equity[t] / close[t]`` traded at
    the fill price of ``t + 1``, then marked at the close of ``t + 1``. Assets without a known
    price are not traded (as in the simulator).
    """

    def __init__(
        self,
        mark: FloatArray,
        fill: FloatArray,
        kind: Literal["equal_weight", "hold"],
        n_batch: int,
        initial_cash: float,
    ) -> None:
        self.mark = mark
        self.fill = fill
        self.kind = kind
        self.initial_cash = initial_cash
        n = mark.shape[1]
        self.weights = np.full(n, 1.0 / n)
        self.cash = np.full(n_batch, initial_cash)
        self.shares = np.zeros((n_batch, n))
        self.equity = np.full(n_batch, initial_cash)
        self.started = np.zeros(n_batch, dtype=bool)

    def reset_rows(self, rows: BoolArray) -> None:
        self.cash[rows] = self.initial_cash
        self.shares[rows] = 0.0
        self.equity[rows] = self.initial_cash
        self.started[rows] = False

    def step(self, t: IntArray) -> tuple[FloatArray, FloatArray]:
        """Move every row from the close of ``t`` to the close of ``t + 1``; returns the equity
        before and after (B,)."""
        t1 = t + 1
        mark0, mark1, price = self.mark[t], self.mark[t1], self.fill[t1]
        shares, cash = self.shares, self.cash
        with np.errstate(divide="ignore", invalid="ignore"):
            held0 = np.where(shares != 0.0, shares * mark0, 0.0)
            prev = cash + held0.sum(axis=1)
            sizing = np.maximum(prev, 0.0)[:, None]
            target = self.weights * sizing / mark0
            rebalance = ~self.started if self.kind == "hold" else np.ones_like(self.started)
            keep = ~rebalance[:, None] | ~np.isfinite(target)
            desired = np.where(keep, 0.0, target - shares)
            tradable = np.isfinite(price) & (price > 0.0)
            traded = np.where(tradable, desired, 0.0)
            paid = np.where(traded != 0.0, price, 0.0)
            new_shares = shares + traded
            new_cash = cash - (traded * paid).sum(axis=1)
            held1 = np.where(new_shares != 0.0, new_shares * mark1, 0.0)
            equity = new_cash + held1.sum(axis=1)
        self.shares, self.cash, self.equity = new_shares, new_cash, equity
        self.started[:] = True
        return prev, equity


class RewardState:
    """Per-row running statistics (DSR moments, equity peak) for a batch of B episodes."""

    def __init__(
        self,
        config: RewardConfig,
        n_batch: int,
        initial_cash: float,
        prices: tuple[FloatArray, FloatArray] | None = None,
    ) -> None:
        """``prices``: the (mark, fill) price arrays (T, N) of the env, needed by the
        benchmark-relative terms (``RewardConfig.has_excess``)."""
        self.config = config
        self.initial_cash = initial_cash
        self.mean = np.zeros(n_batch)
        self.second = np.zeros(n_batch)
        self.peak = np.full(n_batch, initial_cash)
        self.benchmark: BenchmarkAccount | None = None
        if config.has_excess:
            if prices is None:
                raise SimulationError(
                    "RewardConfig has excess_* terms but no prices were given; expected the "
                    "env's (mark, fill) price arrays to run the benchmark account"
                )
            mark, fill = prices
            self.benchmark = BenchmarkAccount(
                mark, fill, config.excess_benchmark, n_batch, initial_cash
            )
        self.excess_mean = np.zeros(n_batch)
        self.excess_second = np.zeros(n_batch)
        self.relative_peak = np.ones(n_batch)

    @property
    def has_excess(self) -> bool:
        """Whether ``step`` needs the decision bars and ``excess`` adds anything."""
        return self.benchmark is not None

    def reset_rows(self, rows: BoolArray) -> None:
        """Start fresh statistics for the rows in the boolean mask."""
        self.mean[rows] = 0.0
        self.second[rows] = 0.0
        self.peak[rows] = self.initial_cash
        if self.benchmark is not None:
            self.benchmark.reset_rows(rows)
            self.excess_mean[rows] = 0.0
            self.excess_second[rows] = 0.0
            self.relative_peak[rows] = 1.0

    def excess(self, t: IntArray, prev_equity: FloatArray, equity: FloatArray) -> FloatArray:
        """The benchmark-relative terms per row for the step from the close of ``t`` to the close
        of ``t + 1`` (already times ``scale``; 0 without such terms); advances the benchmark
        account and the running statistics."""
        cfg = self.config
        if self.benchmark is None:
            return np.zeros_like(equity)
        bench_prev, bench = self.benchmark.step(np.asarray(t, dtype=np.int64))
        safe_prev = np.maximum(prev_equity, _TINY)
        safe_bench_prev = np.maximum(bench_prev, _TINY)
        total = np.zeros_like(equity)
        if cfg.excess_log_return:
            own = np.log(np.maximum(equity, _TINY) / safe_prev)
            ref = np.log(np.maximum(bench, _TINY) / safe_bench_prev)
            total += cfg.excess_log_return * (own - ref)
        if cfg.excess_dsr:
            ret = (equity / safe_prev - 1.0) - (bench / safe_bench_prev - 1.0)
            d_mean = ret - self.excess_mean
            d_second = ret * ret - self.excess_second
            var = self.excess_second - self.excess_mean * self.excess_mean
            ok = var > _TINY
            dsr = (self.excess_second * d_mean - 0.5 * self.excess_mean * d_second) / np.where(
                ok, var, 1.0
            ) ** 1.5
            total += cfg.excess_dsr * np.where(ok, dsr, 0.0)
            self.excess_mean += cfg.dsr_eta * d_mean
            self.excess_second += cfg.dsr_eta * d_second
        relative = np.maximum(equity, 0.0) / np.maximum(bench, _TINY)
        np.maximum(self.relative_peak, relative, out=self.relative_peak)
        if cfg.excess_drawdown:
            total -= cfg.excess_drawdown * (1.0 - relative / self.relative_peak)
        if cfg.scale != 1.0:
            total *= cfg.scale
        return total

    def drawdown(self, equity: FloatArray) -> FloatArray:
        """Drawdown from each row's peak (peak must already include ``equity``)."""
        out: FloatArray = 1.0 - equity / self.peak
        return out

    def step(
        self,
        prev_equity: FloatArray,
        equity: FloatArray,
        traded: FloatArray,
        t: IntArray | None = None,
    ) -> FloatArray:
        """Reward per row for one step and update the running statistics.

        ``traded`` is the traded notional per row (sum over assets of |shares * fill price|);
        ``t`` the decision bars (B,), required by the benchmark-relative terms, whose sum
        (``excess``) is added after the other terms are scaled.
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
        if self.benchmark is not None:
            if t is None:
                raise SimulationError(
                    "RewardState.step got t = None but the reward has excess_* terms; expected "
                    "the decision bars of the step"
                )
            total += self.excess(t, prev_equity, equity)
        return total


__all__ = ["BenchmarkAccount", "RewardState"]
