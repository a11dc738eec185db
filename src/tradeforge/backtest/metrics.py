"""Performance metrics of a return series, with every definition written down.

Conventions shared by all functions here (they match empyrical so results can be cross-checked):

* ``returns`` are simple (not log) per-period returns; NaN entries are dropped first.
* Annualisation uses ``periods_per_year`` (the bars per year of the data: pass
  ``SimConfig.periods_for(panel.frequency)``, or a backtest's ``config.periods_per_year``; 252
  for daily equity bars, the default here): means scale by ``P``, standard
  deviations by ``sqrt(P)``; compounded figures use ``(1 + total) ** (P / n) - 1``.
* Standard deviations use ``ddof=1`` (sample estimate); the downside deviation is the root mean
  square of ``min(r, 0)`` over *all* periods (no ddof), as Sortino defines it.
* The risk-free rate is zero: pass excess returns if you want another one.
* Drawdowns are measured on the compounded equity curve that starts at 1 before the first
  return; ``max_drawdown`` is a negative fraction (-0.25 = 25 % below the running peak).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from tradeforge.core.errors import BacktestError
from tradeforge.core.types import FloatArray

#: Per-fill trading costs, in the simulator's order.
TRADE_COST_COLUMNS: tuple[str, ...] = ("commission", "spread", "slippage", "impact")
#: Everything charged: trading costs, the borrow fee on shorts and margin interest on loans.
CHARGE_COLUMNS: tuple[str, ...] = (*TRADE_COST_COLUMNS, "borrow", "margin")
#: The columns of a backtest's per-bar ``costs``: the charges, then ``interest`` (income).
COST_COLUMNS: tuple[str, ...] = (*CHARGE_COLUMNS, "interest")


def clean_returns(returns: pd.Series | FloatArray, name: str = "returns") -> FloatArray:
    """Returns as a float64 array without NaNs; raises when infinite values are present."""
    arr = np.asarray(returns, dtype=np.float64).reshape(-1)
    arr = arr[~np.isnan(arr)]
    if not np.all(np.isfinite(arr)):
        raise BacktestError(f"{name} contains infinite values; expected finite simple returns")
    if np.any(arr <= -1.0 - 1e-12):
        raise BacktestError(
            f"{name} has a return of {arr.min():.4g} (<= -100 %); expected simple returns > -1"
        )
    return arr


def equity_curve(returns: pd.Series, start_value: float = 1.0) -> pd.Series:
    """Compounded equity ``start_value * prod(1 + r)`` after each period (NaN returns count as 0)."""
    return start_value * (1.0 + returns.fillna(0.0)).cumprod()


def drawdown_series(returns: pd.Series) -> pd.Series:
    """Fractional distance below the running peak of the equity curve (0 at a new high, <= 0)."""
    eq = equity_curve(returns)
    peak = np.maximum(eq.cummax().to_numpy(), 1.0)
    return pd.Series(eq.to_numpy() / peak - 1.0, index=returns.index, name="drawdown")


def max_drawdown_duration(returns: FloatArray) -> int:
    """Longest run of periods spent below a previous equity peak (unrecovered runs count to the end)."""
    eq = np.cumprod(1.0 + returns)
    peak = np.maximum.accumulate(np.maximum(eq, 1.0))
    under = eq < peak * (1.0 - 1e-12)
    longest = current = 0
    for flag in under:
        current = current + 1 if flag else 0
        longest = max(longest, current)
    return longest


def rolling_sharpe(returns: pd.Series, window: int = 126, periods_per_year: int = 252) -> pd.Series:
    """Annualised Sharpe over a trailing window (value at t uses returns up to t only)."""
    mean = returns.rolling(window, min_periods=window).mean()
    std = returns.rolling(window, min_periods=window).std(ddof=1)
    out = mean / std.where(std > 0) * math.sqrt(periods_per_year)
    return out.rename("rolling_sharpe")


def _annual_return(r: FloatArray, ppy: int) -> float:
    if r.size == 0:
        return float("nan")
    growth = float(np.prod(1.0 + r))
    return float(growth ** (ppy / r.size) - 1.0)


def _sharpe(r: FloatArray, ppy: int) -> float:
    if r.size < 2:
        return float("nan")
    std = float(np.std(r, ddof=1))
    return float(np.mean(r) / std * math.sqrt(ppy)) if std > 0 else float("nan")


def _sortino(r: FloatArray, ppy: int) -> float:
    if r.size < 2:
        return float("nan")
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) * math.sqrt(ppy)
    return float(np.mean(r) * ppy / downside) if downside > 0 else float("nan")


def _max_drawdown(r: FloatArray) -> float:
    if r.size == 0:
        return float("nan")
    eq = np.cumprod(1.0 + r)
    peak = np.maximum.accumulate(np.maximum(eq, 1.0))
    return float(np.min(eq / peak - 1.0))


def var_cvar(r: FloatArray, level: float = 0.05) -> tuple[float, float]:
    """Historical VaR and CVaR at tail probability ``level`` (both returned as returns, usually < 0).

    VaR is the ``level`` quantile with linear interpolation (``numpy.percentile``). CVaR is the mean
    of the ``floor((n - 1) * level) + 1`` lowest returns, i.e. the average loss in the tail.
    """
    if not 0.0 < level < 1.0:
        raise BacktestError(f"var level = {level!r}; expected a tail probability in (0, 1)")
    if r.size == 0:
        return float("nan"), float("nan")
    var = float(np.percentile(r, 100.0 * level))
    k = int((r.size - 1) * level)
    cvar = float(np.mean(np.partition(r, k)[: k + 1]))
    return var, cvar


def alpha_beta(
    r: FloatArray, b: FloatArray, periods_per_year: int = 252
) -> tuple[float, float, float, float]:
    """CAPM alpha (annualised by compounding the mean daily alpha), beta, IR and tracking error.

    ``beta = cov(r, b) / var(b)`` with population moments; ``alpha = (1 + mean(r - beta*b)) ** P - 1``;
    the information ratio is ``mean(r - b) / std(r - b, ddof=1) * sqrt(P)`` and the tracking
    error ``std(r - b, ddof=1) * sqrt(P)``.
    """
    if r.size < 2:
        nan = float("nan")
        return nan, nan, nan, nan
    bc = b - b.mean()
    var_b = float(np.mean(bc**2))
    beta = float(np.mean(bc * r) / var_b) if var_b > 1e-30 else float("nan")
    alpha = float((1.0 + np.mean(r - beta * b)) ** periods_per_year - 1.0)
    active = r - b
    te = float(np.std(active, ddof=1))
    ir = float(np.mean(active) / te * math.sqrt(periods_per_year)) if te > 0 else float("nan")
    return alpha, beta, ir, te * math.sqrt(periods_per_year)


CLOSED_TRADE_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "symbol",
    "side",
    "shares",
    "entry_price",
    "exit_price",
    "pnl",
)


def closed_trades(fills: pd.DataFrame) -> pd.DataFrame:
    """Closed trades (one row per fill that reduces or flips a position) from a fills table.

    ``fills`` needs ``symbol``, ``shares`` (signed) and ``price``, optionally ``costs`` (cash
    fees of the fill) and ``timestamp`` (fills are processed in timestamp order). Positions are
    kept per symbol at average cost; the fees of opening fills are folded into that cost, so the
    sum of ``pnl`` over a position that is opened and fully closed equals its cash result. A
    closing fill realises ``closed * (price - entry_price) * side`` minus its share of its own
    fees (``side`` is +1 for a long, -1 for a short; ``shares`` is the closed amount > 0;
    ``entry_price`` is the fee-adjusted average cost).
    """
    missing = [c for c in ("symbol", "shares", "price") if c not in fills.columns]
    if missing:
        raise BacktestError(
            f"fills are missing columns {missing}; expected symbol, shares and price"
        )
    if "timestamp" in fills.columns:
        fills = fills.sort_values("timestamp", kind="stable")
    n = len(fills)
    fees = fills["costs"].to_numpy(np.float64) if "costs" in fills.columns else np.zeros(n)
    stamps = fills["timestamp"].to_numpy() if "timestamp" in fills.columns else np.arange(n)
    pos: dict[Any, float] = {}
    avg: dict[Any, float] = {}
    rows: list[tuple[Any, ...]] = []
    qtys = fills["shares"].to_numpy(np.float64)
    prices = fills["price"].to_numpy(np.float64)
    for i, sym in enumerate(fills["symbol"]):
        qty, price, fee = float(qtys[i]), float(prices[i]), float(fees[i])
        if qty == 0.0:
            continue
        held = pos.get(sym, 0.0)
        if held != 0.0 and math.copysign(1.0, qty) != math.copysign(1.0, held):
            closed = min(abs(qty), abs(held))
            side = math.copysign(1.0, held)
            close_fee = fee * closed / abs(qty)
            pnl = closed * (price - avg[sym]) * side - close_fee
            rows.append((stamps[i], sym, side, closed, avg[sym], price, pnl))
            rest = held + qty
            if abs(rest) <= 1e-12 * max(abs(held), 1.0):
                pos[sym] = 0.0
            elif math.copysign(1.0, rest) != side:  # flipped: the rest opens a new position
                pos[sym] = rest
                avg[sym] = (price * rest + (fee - close_fee)) / rest
            else:
                pos[sym] = rest
        else:
            new = held + qty
            avg[sym] = (avg.get(sym, 0.0) * held + price * qty + fee) / new
            pos[sym] = new
    return pd.DataFrame(rows, columns=list(CLOSED_TRADE_COLUMNS))


def trade_pnls(trades: pd.DataFrame) -> FloatArray:
    """Realised P&L of each closed trade: the ``pnl`` column when ``trades`` has one (closed
    trades, e.g. ``BacktestResult.trades``), else computed from a fills table by
    :func:`closed_trades`."""
    if "pnl" in trades.columns:
        pnl = trades["pnl"].to_numpy(np.float64)
    else:
        pnl = closed_trades(trades)["pnl"].to_numpy(np.float64)
    kept: FloatArray = pnl[np.isfinite(pnl)]
    return kept


def _mean_of(value: pd.Series | pd.DataFrame | FloatArray | float, name: str) -> FloatArray:
    if isinstance(value, pd.DataFrame):
        arr = value.abs().sum(axis=1).to_numpy(np.float64)
    else:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    kept: FloatArray = arr[~np.isnan(arr)]
    if kept.size and np.any(kept < 0):
        raise BacktestError(f"{name} has negative values; expected non-negative fractions")
    return kept


def compute_metrics(
    returns: pd.Series,
    benchmark: pd.Series | None = None,
    *,
    turnover: pd.Series | FloatArray | None = None,
    trades: pd.DataFrame | None = None,
    exposure: pd.Series | pd.DataFrame | FloatArray | None = None,
    costs: pd.DataFrame | None = None,
    periods_per_year: int = 252,
    var_level: float = 0.05,
    initial_equity: float | None = None,
) -> dict[str, float]:
    """All headline metrics of one strategy as a flat ``{name: float}`` dict (NaN when undefined).

    Keys and definitions (``P = periods_per_year``, ``n`` = number of non-NaN returns):

    * ``total_return``: ``prod(1 + r) - 1``. ``annual_return``: CAGR ``(1 + total) ** (P/n) - 1``.
    * ``annual_volatility``: ``std(r, ddof=1) * sqrt(P)``.
    * ``sharpe``: ``mean(r) / std(r, ddof=1) * sqrt(P)`` (risk-free 0).
    * ``sortino``: ``mean(r) * P / (sqrt(mean(min(r, 0)^2)) * sqrt(P))``.
    * ``max_drawdown`` (negative fraction), ``max_drawdown_duration`` (bars under water, longest
      run), ``calmar``: ``annual_return / |max_drawdown|``.
    * ``win_rate``: share of periods with ``r > 0`` among periods with ``r != 0``;
      ``profit_factor``: ``sum(r > 0) / |sum(r < 0)|`` over periods.
    * With ``trades`` (closed trades with a ``pnl`` column, or a fills table): ``n_trades``
      (closed trades), ``n_fills`` (fills table only), ``trade_win_rate``, ``avg_trade_pnl``
      (cash per closed trade, fees included) and ``trade_profit_factor`` (see
      :func:`closed_trades`).
    * With ``turnover`` (fraction of equity traded per bar): ``turnover_total`` (sum) and
      ``turnover_annual`` (mean * P).
    * ``exposure``: mean gross exposure ``sum |w|`` when weights (DataFrame) or a gross exposure
      series is given; otherwise the share of periods with a non-zero return.
    * With ``costs`` (cash per bar, columns of :data:`COST_COLUMNS`): ``cost_<column>`` totals,
      ``costs_paid`` (commission + spread + borrow + margin), ``slippage_paid`` (slippage +
      impact) and,
      given ``initial_equity``, ``costs_bps`` of total costs relative to the initial equity.
    * With ``benchmark`` (aligned on common timestamps): ``alpha``, ``beta``,
      ``information_ratio`` and ``tracking_error`` (see :func:`alpha_beta`).
    * ``var`` and ``cvar``: historical, at tail probability ``var_level`` (see :func:`var_cvar`).
    """
    if periods_per_year <= 0:
        raise BacktestError(f"periods_per_year = {periods_per_year!r}; expected a positive integer")
    if not isinstance(returns, pd.Series):
        returns = pd.Series(np.asarray(returns, dtype=np.float64))
    r = clean_returns(returns)
    ppy = periods_per_year
    out: dict[str, float] = {"n_periods": float(r.size)}
    total = float(np.prod(1.0 + r) - 1.0) if r.size else float("nan")
    out["total_return"] = total
    out["annual_return"] = _annual_return(r, ppy)
    out["annual_volatility"] = float(np.std(r, ddof=1) * math.sqrt(ppy)) if r.size > 1 else math.nan
    out["sharpe"] = _sharpe(r, ppy)
    out["sortino"] = _sortino(r, ppy)
    mdd = _max_drawdown(r)
    out["max_drawdown"] = mdd
    out["max_drawdown_duration"] = float(max_drawdown_duration(r)) if r.size else math.nan
    out["calmar"] = out["annual_return"] / abs(mdd) if mdd < 0 else math.nan
    nonzero = r[r != 0.0]
    out["win_rate"] = float(np.mean(nonzero > 0)) if nonzero.size else math.nan
    losses = float(-r[r < 0].sum())
    out["profit_factor"] = float(r[r > 0].sum()) / losses if losses > 0 else math.nan
    out["var"], out["cvar"] = var_cvar(r, var_level)

    if trades is not None:
        pnl = trade_pnls(trades)
        if "pnl" not in trades.columns:
            out["n_fills"] = float(len(trades))
        out["n_trades"] = float(pnl.size)
        out["trade_win_rate"] = float(np.mean(pnl > 0)) if pnl.size else math.nan
        out["avg_trade_pnl"] = float(np.mean(pnl)) if pnl.size else math.nan
        lost = float(-pnl[pnl < 0].sum())
        out["trade_profit_factor"] = float(pnl[pnl > 0].sum()) / lost if lost > 0 else math.nan
    if turnover is not None:
        tv = _mean_of(turnover, "turnover")
        out["turnover_total"] = float(tv.sum())
        out["turnover_annual"] = float(tv.mean() * ppy) if tv.size else math.nan
    if exposure is not None:
        ex = _mean_of(exposure, "exposure")
        out["exposure"] = float(ex.mean()) if ex.size else math.nan
    else:
        out["exposure"] = float(np.mean(r != 0.0)) if r.size else math.nan
    if costs is not None:
        unknown = [c for c in costs.columns if c not in COST_COLUMNS]
        if unknown:
            raise BacktestError(
                f"costs has unknown columns {unknown}; expected a subset of {list(COST_COLUMNS)}"
            )
        totals = {c: float(costs[c].sum()) if c in costs.columns else 0.0 for c in COST_COLUMNS}
        for c, v in totals.items():
            out[f"cost_{c}"] = v
        out["costs_paid"] = (
            totals["commission"] + totals["spread"] + totals["borrow"] + totals["margin"]
        )
        out["slippage_paid"] = totals["slippage"] + totals["impact"]
        if initial_equity is not None and initial_equity > 0:
            paid = out["costs_paid"] + out["slippage_paid"]
            out["costs_bps"] = paid / initial_equity * 1e4
    if benchmark is not None:
        joined = pd.concat([returns.rename("r"), benchmark.rename("b")], axis=1, join="inner")
        joined = joined.dropna()
        if len(joined) < 2:
            raise BacktestError(
                f"benchmark shares {len(joined)} timestamps with returns; expected at least 2"
            )
        a, b, ir, te = alpha_beta(
            joined["r"].to_numpy(np.float64), joined["b"].to_numpy(np.float64), ppy
        )
        out.update(alpha=a, beta=b, information_ratio=ir, tracking_error=te)
    return out


__all__ = [
    "CHARGE_COLUMNS",
    "CLOSED_TRADE_COLUMNS",
    "COST_COLUMNS",
    "TRADE_COST_COLUMNS",
    "alpha_beta",
    "clean_returns",
    "closed_trades",
    "compute_metrics",
    "drawdown_series",
    "equity_curve",
    "max_drawdown_duration",
    "rolling_sharpe",
    "trade_pnls",
    "var_cvar",
]
