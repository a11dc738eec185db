"""The backtest engine: target weights over a bar panel through the shared simulator.

``run_backtest`` runs ONE account over the bars ``[start, end)`` of a panel. Row ``t`` of the
weights is the target decided at the close of bar ``t`` (NaN = hold that asset; an all-NaN row
holds everything). It is sized at close[t], filled at bar t+1 (``SimConfig.fill_price``) and
marked at close[t+1], by exactly the rules of ``tradeforge.sim.step``: the engine either loops
over ``sim.step`` (``kernel="step"``, pure numpy, always available) or runs the compiled path
loop ``engine_kernel.simulate_path`` (``kernel="numba"``), which calls
``tradeforge.sim.kernel.account_step`` (the compiled one-account ``sim.step`` that the single
``TradingEnv`` also runs) once per bar. The default ``kernel="auto"`` takes numba when it can be
imported and the step loop otherwise; tests check that both give the same numbers, and that a
``TradingEnv`` fed the same actions ends with the same equity.

Typical calls::

    res = run_backtest(panel, weights, sim_config, start, end)  # weights (T, N), NaN = hold
    weights = rollout_weights(policy, env)                      # a policy's episode
    res = run_backtest(env.panel, weights, env.config.sim, *decision_window(weights))
    results = run_baselines(panel, sim_config, train_end, end)  # {name: BacktestResult}
    res.metrics(benchmark_returns)                              # compute_metrics of the run

Every per-bar output is indexed by the bar timestamps ``panel.index[start:end]``: row 0 is the
first decision bar (equity = initial cash, no positions, no costs), row k > 0 holds the fills,
costs and positions of bar ``start + k`` (the fill bar). The last row of the weights
(bar end-1) is never used: nothing can fill after it.

Latency: with ``SimConfig.delay_bars = d`` the target of row ``t`` is released at bar ``t + d``
(sized at its close, filled at bar t + 1 + d; ``tradeforge.sim.latency.delay_targets``): the
first ``d`` bars of the window hold, and the last ``d`` decisions never fill.

Bars per year: the result's ``config`` is ``config.resolved_for(panel.frequency)``, so
``periods_per_year`` there is the one the carry rates and the metrics used (explicit, or derived
from the data frequency and ``SimConfig.calendar``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from tradeforge.backtest.baselines import BASELINES, baseline_weights
from tradeforge.backtest.engine_kernel import (
    compiled_kernel,
    numba_available,
    path_market,
    traded_values,
)
from tradeforge.backtest.metrics import (
    CHARGE_COLUMNS,
    COST_COLUMNS,
    TRADE_COST_COLUMNS,
    closed_trades,
    compute_metrics,
)
from tradeforge.backtest.weights_file import (
    WeightsFileConfig,
    load_weights_csv,
    load_weights_csv_with_report,
)
from tradeforge.core.errors import BacktestError
from tradeforge.core.types import FloatArray
from tradeforge.data.panel import BarPanel
from tradeforge.risk import RiskConfig
from tradeforge.risk.bars import BarFill, BarRisk, RiskTally, needs_engine
from tradeforge.sim import AccountState, MarketArrays, SimConfig, initial_state, step
from tradeforge.sim.kernel import (
    M_FILL,
    N_OUT_ROWS,
    OUT_COMMISSION,
    OUT_IMPACT,
    OUT_TRADED,
    OUT_WEIGHTS,
    pack_sim_params,
    stack_for,
)
from tradeforge.sim.latency import delay_targets
from tradeforge.sim.step import StepResult

Kernel = Literal["auto", "numba", "step"]


@dataclass(frozen=True, eq=False)
class FillRecords:
    """Raw per-fill arrays of a run, turned into frames only when asked for.

    Row ``i`` of ``traded``/``fees``/``fill_price`` is release bar ``start + i``, filled at bar
    ``start + i + 1``; its target was decided at bar ``start + i - delay``.
    """

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    start: int
    traded: FloatArray  # (L, N) signed shares
    fees: FloatArray  # (4, L, N) commission, spread, slippage, impact
    fill_price: FloatArray  # (L, N) reference fill price at bar t+1
    delay: int = 0


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Everything a backtest produced (see the module docstring for the time alignment).

    Per-bar outputs (``equity``, ``cash``, ``turnover``, ``costs``; ``weights`` and ``positions``
    per symbol) are indexed by the bars of the window. ``costs`` columns are cash amounts >= 0
    per bar; ``interest`` is income (added to cash: on positive free cash, plus the short
    rebate), the others are charges (``margin``: interest on negative free cash). ``fills`` and
    ``trades`` are built on first access:

    * ``fills``: one row per non-zero fill with ``timestamp`` (fill bar), ``decision_timestamp``
      (the bar the target was decided at: ``delay_bars`` before the release bar),
      ``symbol``, ``shares`` (signed), ``price`` (reference fill price), ``notional``
      (|shares| * price), ``commission``, ``spread``, ``slippage``, ``impact`` and ``costs``
      (their sum).
    * ``trades``: closed trades from the fills (``metrics.closed_trades``): one row per fill that
      reduces or flips a position, with its realised ``pnl`` net of fees.
    """

    equity: pd.Series
    returns: pd.Series
    weights: pd.DataFrame
    positions: pd.DataFrame
    costs: pd.DataFrame
    turnover: pd.Series
    cash: pd.Series
    config: SimConfig
    records: FillRecords
    notes: tuple[str, ...] = ()
    risk: RiskTally | None = None

    @property
    def periods_per_year(self) -> int:
        """Bars per year this run used (``config`` is resolved for the panel's frequency)."""
        ppy = self.config.periods_per_year
        if ppy is None:
            raise BacktestError(
                "BacktestResult.config.periods_per_year is None; expected the resolved config "
                "run_backtest returns (SimConfig.resolved_for(panel.frequency))"
            )
        return ppy

    @cached_property
    def fills(self) -> pd.DataFrame:
        """Every non-zero fill (see the class docstring)."""
        return _fills_frame(self.records)

    @cached_property
    def trades(self) -> pd.DataFrame:
        """Closed trades with realised P&L net of fees (see ``metrics.closed_trades``)."""
        return closed_trades(self.fills)

    def metrics(
        self, benchmark: pd.Series | None = None, var_level: float = 0.05
    ) -> dict[str, float]:
        """``compute_metrics`` of this run: returns, trades, turnover, exposure and costs, plus
        ``n_fills`` (non-zero fills)."""
        out = compute_metrics(
            self.returns,
            benchmark,
            turnover=self.turnover.iloc[1:],
            trades=self.trades,
            exposure=self.weights.iloc[1:],
            costs=self.costs,
            periods_per_year=self.periods_per_year,
            var_level=var_level,
            initial_equity=float(self.equity.iloc[0]),
        )
        out["n_fills"] = float(np.count_nonzero(self.records.traded))
        return out

    def summary(self) -> dict[str, float]:
        """Headline numbers: returns, risk, trading activity and costs by type."""
        eq = self.equity.to_numpy(dtype=np.float64)
        ret = self.returns.to_numpy(dtype=np.float64)
        ppy = self.periods_per_year
        years = len(ret) / ppy
        total = eq[-1] / eq[0] - 1.0
        cagr = (eq[-1] / eq[0]) ** (1.0 / years) - 1.0 if years > 0 and eq[-1] > 0 else math.nan
        std = float(np.std(ret, ddof=1)) if len(ret) > 1 else math.nan
        sharpe = float(np.mean(ret)) / std * math.sqrt(ppy) if std and std > 0 else math.nan
        peak = np.maximum.accumulate(eq)
        out: dict[str, float] = {
            "initial_equity": float(eq[0]),
            "final_equity": float(eq[-1]),
            "total_return": float(total),
            "cagr": float(cagr),
            "volatility": std * math.sqrt(ppy) if std == std else math.nan,
            "sharpe": sharpe,
            "max_drawdown": float(np.min(eq / peak - 1.0)),
            "n_bars": float(len(eq)),
            "n_fills": float(np.count_nonzero(self.records.traded)),
            "avg_turnover": float(self.turnover.iloc[1:].mean()) if len(eq) > 1 else 0.0,
        }
        for name in COST_COLUMNS:
            out[f"total_{name}"] = float(self.costs[name].sum())
        out["total_costs"] = float(self.costs[list(CHARGE_COLUMNS)].to_numpy().sum())
        return out


@dataclass(frozen=True)
class _Path:
    """Raw arrays of one run over L = stop - 1 - start decision bars.

    The per-bar state arrays have L + 1 rows: row 0 is the first decision bar before anything
    trades (no shares, no weights, initial cash), row i > 0 the state after the fill of decision
    bar start+i-1 (at bar start+i). The per-fill arrays have L rows: row i is decision bar
    start+i, filled at start+i+1.
    """

    shares: FloatArray  # (L + 1, N) after the fill
    weights: FloatArray  # (L + 1, N) held after the fill, at close (the simulator's weights)
    scalars: FloatArray  # (6, L + 1) prev_equity, equity, cash, borrow, margin, interest
    traded: FloatArray  # (L, N)
    fees: FloatArray  # (4, L, N) commission, spread, slippage, impact


def _empty_path_state(n_dec: int, n: int, cash0: float) -> tuple[FloatArray, FloatArray]:
    """(L + 1, N) shares and (6, L + 1) scalars with row/column 0 set to the starting state."""
    shares = np.empty((n_dec + 1, n))
    shares[0] = 0.0
    scalars = np.empty((6, n_dec + 1))
    scalars[:, 0] = (cash0, cash0, cash0, 0.0, 0.0, 0.0)
    return shares, scalars


def _check_inputs(
    panel: BarPanel, weights: FloatArray, start: int, end: int | None
) -> tuple[FloatArray, int, int]:
    w = np.asarray(weights, dtype=np.float64)
    expected = (panel.n_bars, panel.n_symbols)
    if w.ndim == 1 and panel.n_symbols == 1:
        w = w[:, None]
    if w.shape != expected:
        raise BacktestError(
            f"weights have shape {w.shape}; expected (bars, symbols) = {expected} aligned with "
            "the panel"
        )
    stop = panel.n_bars if end is None else int(end)
    if not 0 <= start < stop <= panel.n_bars or stop - start < 2:
        raise BacktestError(
            f"backtest window start = {start}, end = {end}; expected 0 <= start, start + 2 <= "
            f"end <= {panel.n_bars} (a decision bar and a fill bar)"
        )
    inf = np.isinf(w[start:stop])
    bad = np.argwhere(inf) if inf.any() else np.empty((0, 2), dtype=np.intp)
    if bad.size:
        row, col = int(bad[0][0]) + start, int(bad[0][1])
        raise BacktestError(
            f"weights at {panel.index[row]} for {panel.symbols[col]!r} = {w[row, col]}; "
            "expected a finite weight or NaN (hold)"
        )
    return w, start, stop


def _bar_fill(state: AccountState, res: StepResult) -> BarFill:
    fees = res.commission[0] + res.spread[0] + res.slippage[0] + res.impact[0]
    return BarFill(
        res.traded_shares[0], res.fill_price[0], fees, float(state.cash[0]), state.shares[0]
    )


def _run_step_loop(
    w: FloatArray,
    market: MarketArrays,
    config: SimConfig,
    start: int,
    stop: int,
    gate: tuple[BarRisk, pd.DatetimeIndex] | None = None,
) -> _Path:
    """The straightforward path: one ``sim.step`` call (B=1) per decision bar. With ``gate``
    (the risk engine and the bar times) each bar's targets first go through
    :meth:`BarRisk.decide` and its fills through :meth:`BarRisk.filled`."""
    n_dec = stop - 1 - start
    n = market.n_assets
    shares, scalars = _empty_path_state(n_dec, n, float(config.initial_cash))
    traded = np.zeros((n_dec, n))
    fees = np.zeros((4, n_dec, n))
    held = np.zeros((n_dec + 1, n))
    state: AccountState = initial_state(config, 1, n)
    for i, t in enumerate(range(start, stop - 1)):
        row = w[t]
        if gate is not None:
            risk, times = gate
            before = state

            def simulate(target: FloatArray, t: int = t, before: AccountState = before) -> BarFill:
                return _bar_fill(*step(before, target[None, :], market, t, config))

            row = risk.decide(times[t].to_pydatetime(), row, before.shares[0],
                              float(before.cash[0]), market.mark[t], simulate)  # fmt: skip
        state, res = step(state, row[None, :], market, t, config)
        if gate is not None:
            gate[0].filled(gate[1][t + 1].to_pydatetime(), _bar_fill(state, res))
        shares[i + 1] = state.shares[0]
        traded[i] = res.traded_shares[0]
        held[i + 1] = res.weights[0]
        fees[0, i], fees[1, i] = res.commission[0], res.spread[0]
        fees[2, i], fees[3, i] = res.slippage[0], res.impact[0]
        scalars[:, i + 1] = (
            res.prev_equity[0],
            res.equity[0],
            state.cash[0],
            res.borrow[0],
            res.margin[0],
            res.interest[0],
        )
    return _Path(shares, held, scalars, traded, fees)


def _run_compiled(
    w: FloatArray, stacked: FloatArray, config: SimConfig, start: int, stop: int, frequency: str
) -> _Path:
    """One call of ``engine_kernel.simulate_path`` (``sim.kernel.account_step`` per bar) on the
    stacked market (``sim.kernel.stack_for`` or ``sim.kernel.market_stack``). The kernel writes
    rows 1.. of the state arrays in place (no copies to prepend the starting row)."""
    n_dec = stop - 1 - start
    n = stacked.shape[2]
    cash0 = float(config.initial_cash)
    out = np.empty((N_OUT_ROWS, n_dec + 1, n))  # the kernel writes every element of rows 1..
    out[OUT_WEIGHTS, 0] = 0.0
    shares, scalars = _empty_path_state(n_dec, n, cash0)
    kernel = compiled_kernel()
    kernel(
        np.ascontiguousarray(w),
        stacked,
        start,
        stop - 1,
        cash0,
        pack_sim_params(config, frequency),
        out[:, 1:],
        shares[1:],
        scalars[:, 1:],
    )
    # rows commission, spread, slippage, impact: consecutive in sim.kernel's layout (tested)
    fees = out[OUT_COMMISSION : OUT_IMPACT + 1, 1:]
    return _Path(shares, out[OUT_WEIGHTS], scalars, out[OUT_TRADED, 1:], fees)


def _choose_kernel(kernel: Kernel) -> Literal["numba", "step"]:
    if kernel == "step":
        return "step"
    if kernel == "numba":
        if not numba_available():
            raise BacktestError(
                "kernel = 'numba' but numba is not installed; pip install numba, or use "
                "kernel = 'auto' or 'step'"
            )
        return "numba"
    if kernel == "auto":
        return "numba" if numba_available() else "step"
    raise BacktestError(f"kernel = {kernel!r}; expected 'auto', 'numba' or 'step'")


def run_backtest(
    panel: BarPanel,
    weights: FloatArray,
    config: SimConfig,
    start: int = 0,
    end: int | None = None,
    *,
    market: MarketArrays | None = None,
    kernel: Kernel = "auto",
    risk: RiskConfig | None = None,
) -> BacktestResult:
    """Backtest target ``weights`` (T, N) decided at each bar's close over bars [start, end).

    ``market`` may be passed to reuse ``MarketArrays.for_config(panel, config)`` across runs on
    the same panel (its windows must be the config's). See the module docstring for timing,
    latency and alignment. ``risk``: the experiment's ``risk:`` section; when it sets an
    order-level check, a stop or a breaker, every bar goes through ``tradeforge.risk``'s
    engine (``BarRisk``, on the ``sim.step`` loop) and the result's ``risk`` counts what it
    did; otherwise (None, or target-weight limits only) the run is exactly the one without it.
    """
    w, start, stop = _check_inputs(panel, weights, start, end)
    if needs_engine(risk):
        return _run_with_risk(panel, w, config, start, stop, market, risk)
    config = config.resolved_for(panel.frequency)
    if market is not None:
        if market.close.shape != (panel.n_bars, panel.n_symbols):
            raise BacktestError(
                f"market arrays have shape {market.close.shape}; expected "
                f"{(panel.n_bars, panel.n_symbols)} from the panel"
            )
        _check_market_windows(market, config)
    if config.delay_bars:
        w = delay_targets(w, config.delay_bars, start)
    chosen = _choose_kernel(kernel)
    if chosen == "step":
        if market is None:
            market = MarketArrays.for_config(panel, config)
        path = _run_step_loop(w, market, config, start, stop)
        fill_prices = market.fill_prices(config.fill_price)
    else:
        if market is None:  # the stacked arrays the kernel reads, in one compiled pass
            stacked = path_market(
                panel.open,
                panel.high,
                panel.low,
                panel.close,
                panel.volume,
                panel.extra.get("vwap"),
                config,
            )
        else:
            stacked = stack_for(market, config.fill_price)
        path = _run_compiled(w, stacked, config, start, stop, panel.frequency)
        fill_prices = stacked[M_FILL]
    return _assemble(panel, fill_prices, config, start, stop, path, chosen == "numba")


def _run_with_risk(
    panel: BarPanel,
    w: FloatArray,
    config: SimConfig,
    start: int,
    stop: int,
    market: MarketArrays | None,
    risk: RiskConfig | None,
) -> BacktestResult:
    """``run_backtest`` through the risk engine (one ``BarRisk`` on the ``sim.step`` loop)."""
    if risk is None:  # pragma: no cover - needs_engine(None) is False
        raise BacktestError("risk = None; expected a RiskConfig")
    config = config.resolved_for(panel.frequency)
    if market is None:
        market = MarketArrays.for_config(panel, config)
    else:
        _check_market_windows(market, config)
    if config.delay_bars:
        w = delay_targets(w, config.delay_bars, start)
    gate = BarRisk(risk, panel.symbols, initial_cash=float(config.initial_cash),
                   shortable=config.allow_short, start=panel.index[start].to_pydatetime())  # fmt: skip
    path = _run_step_loop(w, market, config, start, stop, (gate, panel.index))
    result = _assemble(panel, market.fill_prices(config.fill_price), config, start, stop, path)
    return replace(result, risk=gate.tally)


def _check_market_windows(market: MarketArrays, config: SimConfig) -> None:
    if (market.vol_window, market.adv_window) != (config.vol_window, config.adv_window):
        raise BacktestError(
            f"market arrays were built with vol_window = {market.vol_window}, adv_window = "
            f"{market.adv_window}; expected the config's {config.vol_window}, "
            f"{config.adv_window} (build them with MarketArrays.for_config(panel, config))"
        )


def backtest_weights_file(
    path: str | Path,
    panel: BarPanel,
    config: SimConfig,
    options: WeightsFileConfig | None = None,
    *,
    kernel: Kernel = "auto",
    risk: RiskConfig | None = None,
) -> BacktestResult:
    """Backtest a user's weights CSV (see ``weights_file``) from its first date to the panel end.

    What the loader clipped, held or assumed is listed in ``BacktestResult.notes``; ``risk`` as
    in :func:`run_backtest`.
    """
    weights, report = load_weights_csv_with_report(path, panel, config, options)
    listed = np.flatnonzero(~np.isnan(weights).all(axis=1))
    start = int(listed[0])
    if start >= panel.n_bars - 1:
        raise BacktestError(
            f"weights file {path}: first date {panel.index[start]} is the last bar of the data; "
            "expected at least one later bar to fill on"
        )
    result = run_backtest(panel, weights, config, start=start, kernel=kernel, risk=risk)
    return replace(result, notes=report.notes)


def decision_window(weights: FloatArray) -> tuple[int, int]:
    """``(start, end)`` for ``run_backtest`` covering the rows of ``weights`` that decide anything:
    ``start`` = first row with a non-NaN weight, ``end`` = last such row + 2 (its fill bar + 1),
    capped at the number of rows. E.g. for ``rollout_weights`` of an episode that ended early."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[:, None]
    rows = np.flatnonzero(~np.isnan(w).all(axis=1))
    if rows.size == 0:
        raise BacktestError("weights have no row with a non-NaN target; expected some decisions")
    return int(rows[0]), min(int(rows[-1]) + 2, w.shape[0])


def run_baselines(
    panel: BarPanel,
    config: SimConfig,
    train_end: int,
    end: int | None = None,
    names: Sequence[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    kernel: Kernel = "auto",
) -> dict[str, BacktestResult]:
    """Backtest baselines (default: every one in ``BASELINES``) over bars ``[train_end, end)``.

    Each baseline is fitted on / decides from data before its decision bars only (see
    ``baselines``); ``params`` maps a baseline name to its keyword parameters. The market
    arrays are built once and shared.
    """
    chosen = list(BASELINES) if names is None else list(names)
    extra = dict(params or {})
    unknown = [k for k in extra if k not in chosen]
    if unknown:
        raise BacktestError(f"params given for baselines {unknown} that are not run: {chosen}")
    market = MarketArrays.for_config(panel, config)
    out: dict[str, BacktestResult] = {}
    for name in chosen:
        w = baseline_weights(name, panel, train_end, **dict(extra.get(name, {})))
        out[name] = run_backtest(
            panel, w, config, start=train_end, end=end, market=market, kernel=kernel
        )
    return out


def _prepend(first: float, rows: FloatArray) -> FloatArray:
    out = np.empty(len(rows) + 1)
    out[0] = first
    out[1:] = rows
    return out


def _assemble(
    panel: BarPanel,
    fill_prices: FloatArray,
    config: SimConfig,
    start: int,
    stop: int,
    path: _Path,
    compiled: bool = False,
) -> BacktestResult:
    index = panel.index[start:stop]
    symbols = pd.Index(panel.symbols)
    prev_eq = path.scalars[0, 1:]
    equity_arr, cash_arr = path.scalars[1], path.scalars[2]
    fill_px = fill_prices[start + 1 : stop]
    if compiled:
        traded_value = np.empty_like(path.traded)
        traded_values(path.traded, fill_px, traded_value)
    else:
        traded_value = np.abs(np.where(path.traded != 0.0, path.traded * fill_px, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        turnover = np.where(prev_eq > 0.0, traded_value.sum(axis=1) / prev_eq, 0.0)
    fee_sums = path.fees.sum(axis=2)  # (4, L): per bar, each row summed as before
    costs = pd.DataFrame(
        {
            "commission": _prepend(0.0, fee_sums[0]),
            "spread": _prepend(0.0, fee_sums[1]),
            "slippage": _prepend(0.0, fee_sums[2]),
            "impact": _prepend(0.0, fee_sums[3]),
            "borrow": path.scalars[3],
            "margin": path.scalars[4],
            "interest": path.scalars[5],
        },
        index=index,
    )
    equity = pd.Series(equity_arr, index=index, name="equity", copy=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        rets = equity_arr[1:] / equity_arr[:-1] - 1.0
    return BacktestResult(
        equity=equity,
        returns=pd.Series(rets, index=index[1:], name="returns", copy=False),
        weights=pd.DataFrame(path.weights, index=index, columns=symbols, copy=False),
        positions=pd.DataFrame(path.shares, index=index, columns=symbols, copy=False),
        costs=costs,
        turnover=pd.Series(_prepend(0.0, turnover), index=index, name="turnover", copy=False),
        cash=pd.Series(cash_arr, index=index, name="cash", copy=False),
        config=config,
        records=FillRecords(
            index=panel.index,
            symbols=tuple(panel.symbols),
            start=start,
            traded=path.traded,
            fees=path.fees,
            fill_price=fill_px,
            delay=config.delay_bars,
        ),
    )


def _fills_frame(rec: FillRecords) -> pd.DataFrame:
    rows, cols = np.nonzero(rec.traded)
    shares = rec.traded[rows, cols]
    price = rec.fill_price[rows, cols]
    parts = {name: rec.fees[k][rows, cols] for k, name in enumerate(TRADE_COST_COLUMNS)}
    frame: dict[str, Any] = {
        "timestamp": rec.index[rec.start + 1 + rows],
        "decision_timestamp": rec.index[rec.start + rows - rec.delay],
        "symbol": np.array(rec.symbols, dtype=object)[cols],
        "shares": shares,
        "price": price,
        "notional": np.abs(shares) * price,
        **parts,
        "costs": parts["commission"] + parts["spread"] + parts["slippage"] + parts["impact"],
    }
    return pd.DataFrame(frame)


__all__ = [
    "BacktestResult",
    "FillRecords",
    "Kernel",
    "WeightsFileConfig",
    "backtest_weights_file",
    "decision_window",
    "load_weights_csv",
    "run_backtest",
    "run_baselines",
]
