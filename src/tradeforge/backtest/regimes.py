"""Robustness views: metrics per market regime and sensitivity to trading costs.

Regime labels for the return earned over bar ``t`` (from close ``t-1`` to close ``t``) use only what
was known at close ``t-1``: trailing realised volatility, the VIX close and the market's drawdown.
With ``causal=True`` (the default) the tercile cut points are expanding-window quantiles of the
signal's own history up to that bar (after ``min_history`` observations), so a label never depends
on later data. ``causal=False`` uses cut points over the whole evaluated sample instead (an ex-post
description: which third of the sample's volatility a bar was in).

:func:`cost_sensitivity` re-runs :func:`tradeforge.backtest.engine.run_backtest` with every cost
rate scaled by ``k`` (:meth:`tradeforge.sim.CostConfig.scaled`), and with the fills delayed by
0, 1 and 2 extra bars (``SimConfig.delay_bars``) at the configured costs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from tradeforge.backtest.engine import BacktestResult, Kernel, run_backtest
from tradeforge.backtest.metrics import CHARGE_COLUMNS, compute_metrics
from tradeforge.backtest.walkforward import stitch
from tradeforge.core.errors import BacktestError, DataError
from tradeforge.core.types import FloatArray
from tradeforge.data.panel import BarPanel
from tradeforge.sim import MarketArrays, SimConfig

TERCILES: tuple[str, ...] = ("low", "mid", "high")


def market_returns(panel: BarPanel) -> pd.Series:
    """Equal-weighted close-to-close return of the panel's priced symbols per bar."""
    close = panel.close
    rets = close[1:] / close[:-1] - 1.0
    finite = np.isfinite(rets)
    count = finite.sum(axis=1)
    total = np.where(finite, rets, 0.0).sum(axis=1)
    mean = np.divide(total, count, out=np.full(count.shape, np.nan), where=count > 0)
    return pd.Series(mean, index=panel.index[1:], name="market")


def _cut(signal: pd.Series, lo: pd.Series | float, hi: pd.Series | float) -> pd.Series:
    labels = np.where(signal <= lo, "low", np.where(signal <= hi, "mid", "high"))
    known = signal.notna()
    if isinstance(lo, pd.Series):
        known &= lo.notna()
    return pd.Series(labels, index=signal.index, dtype="object").where(known)


def _terciles(signal: pd.Series, causal: bool = True, min_history: int = 126) -> pd.Series:
    """low/mid/high against expanding-window (causal) or whole-sample tercile cut points."""
    if causal:
        if min_history < 3:
            raise BacktestError(f"regime min_history = {min_history}; expected >= 3 observations")
        grow = signal.expanding(min_periods=min_history)
        return _cut(signal, grow.quantile(1 / 3), grow.quantile(2 / 3))
    valid = signal.dropna()
    if len(valid) < 3:
        return pd.Series(pd.NA, index=signal.index, dtype="object")
    lo, hi = np.quantile(valid.to_numpy(np.float64), [1 / 3, 2 / 3])
    return _cut(signal, float(lo), float(hi))


def volatility_regimes(
    market: pd.Series,
    window: int = 21,
    index: pd.Index | None = None,
    *,
    causal: bool = True,
    min_history: int = 126,
) -> pd.Series:
    """Low/mid/high terciles of trailing realised volatility known at the previous close.

    The volatility is computed on the whole ``market`` history. Causal cut points use that history
    up to each bar; non-causal ones the bars of ``index`` (default: all of ``market``).
    Labels are returned on ``index``.
    """
    if window < 2:
        raise BacktestError(f"volatility window = {window}; expected >= 2 bars")
    vol = market.rolling(window, min_periods=window).std(ddof=1).shift(1)
    if causal:
        labels = _terciles(vol, True, min_history)
        return (labels if index is None else labels.reindex(index)).rename("volatility")
    if index is not None:
        vol = vol.reindex(index)
    return _terciles(vol, False).rename("volatility")


def vix_regimes(
    index: pd.DatetimeIndex,
    vix: pd.Series,
    min_coverage: float = 0.8,
    max_staleness_days: int = 5,
    *,
    causal: bool = True,
    min_history: int = 126,
) -> pd.Series | None:
    """Low/mid/high terciles of the VIX close known before each bar, or None when the labels cover
    less than ``min_coverage`` of ``index``. Each bar uses the latest VIX close stamped strictly
    before it (at most ``max_staleness_days`` old); causal cut points come from the VIX history up
    to that close."""
    vix = vix.dropna().sort_index()
    vix = vix[~vix.index.duplicated(keep="last")]
    if vix.empty or len(index) == 0:
        return None
    stamps = pd.DatetimeIndex(vix.index)
    pos = np.searchsorted(stamps.asi8, index.as_unit(stamps.unit).asi8, side="left") - 1
    safe = np.maximum(pos, 0)
    age = index - stamps[safe]
    fresh = (pos >= 0) & (age <= pd.Timedelta(days=max_staleness_days))
    if causal:
        source = _terciles(vix, True, min_history).to_numpy(object)[safe]
        aligned = pd.Series(source, index=index, dtype="object").where(fresh)
    else:
        values = pd.Series(np.where(fresh, vix.to_numpy(np.float64)[safe], np.nan), index=index)
        aligned = _terciles(values, False)
    if aligned.notna().mean() < min_coverage:
        return None
    return aligned.rename("vix")


def drawdown_regimes(market: pd.Series, threshold: float = 0.1) -> pd.Series:
    """Label "drawdown" when the market closed the previous bar more than ``threshold`` below its
    running peak (over the whole ``market`` history given), else "normal"."""
    if not 0 < threshold < 1:
        raise BacktestError(f"drawdown threshold = {threshold}; expected a fraction in (0, 1)")
    eq = (1.0 + market.fillna(0.0)).cumprod()
    peak = eq.cummax().clip(lower=1.0)
    dd = (eq / peak - 1.0).shift(1)
    labels = np.where(dd < -threshold, "drawdown", "normal")
    return pd.Series(labels, index=market.index, dtype="object").where(dd.notna(), "normal")


def load_vix() -> pd.Series | None:
    """The bundled VIX close (UTC daily index, 2014-2019), or None when its package is missing."""
    try:
        from tradeforge.data.bundled import load_macro_series

        return load_macro_series("VIX")
    except DataError:
        return None


def _regime_row(
    kind: str, regime: str, part: pd.Series, n_total: int, periods_per_year: int
) -> dict[str, object]:
    m = compute_metrics(part, periods_per_year=periods_per_year) if len(part) > 1 else {}
    return {
        "kind": kind,
        "regime": regime,
        "bars": len(part),
        "share": len(part) / max(n_total, 1),
        "annual_return": float(part.mean() * periods_per_year) if len(part) else math.nan,
        "annual_volatility": m.get("annual_volatility", math.nan),
        "sharpe": m.get("sharpe", math.nan),
        "max_drawdown": m.get("max_drawdown", math.nan),
        "win_rate": m.get("win_rate", math.nan),
    }


def regime_labels(
    index: pd.DatetimeIndex,
    market: pd.Series,
    vix: pd.Series | None = None,
    *,
    vol_window: int = 21,
    drawdown_threshold: float = 0.1,
    min_vix_coverage: float = 0.8,
    causal: bool = True,
    min_history: int = 126,
) -> dict[str, pd.Series]:
    """Regime label series on ``index``: ``volatility``, ``drawdown`` and (when the VIX covers
    ``index``) ``vix``. Labels at bar ``t`` use only data up to close ``t-1`` (see module doc)."""
    labels: dict[str, pd.Series] = {
        "volatility": volatility_regimes(
            market, vol_window, index, causal=causal, min_history=min_history
        ),
        "drawdown": drawdown_regimes(market, drawdown_threshold).reindex(index),
    }
    if vix is not None:
        v = vix_regimes(index, vix, min_vix_coverage, causal=causal, min_history=min_history)
        if v is not None:
            labels["vix"] = v
    return labels


def regime_table(
    returns: pd.Series,
    panel: BarPanel | pd.Series | None = None,
    vix: pd.Series | None = None,
    *,
    use_bundled_vix: bool = True,
    vol_window: int = 21,
    drawdown_threshold: float = 0.1,
    min_vix_coverage: float = 0.8,
    causal: bool = True,
    min_history: int = 126,
    periods_per_year: int = 252,
) -> pd.DataFrame:
    """Metrics of ``returns`` within each regime: volatility terciles, VIX terciles (when the VIX
    covers the period; the bundled VIX runs 2014-2019) and market drawdown vs normal periods, after
    one ``all`` row for the whole series.

    ``panel`` gives the market (equal-weight panel returns, or a market return Series); pass the
    whole panel, not only the test window, so the trailing signals have history. Without it the
    strategy's own returns define the regimes. Bars whose label is not yet known (warm-up) are in
    no regime row. Columns: ``kind, regime, bars, share, annual_return`` (mean * P),
    ``annual_volatility``, ``sharpe``, ``max_drawdown``, ``win_rate``.
    """
    returns = returns.dropna()
    if not isinstance(returns.index, pd.DatetimeIndex):
        raise BacktestError(
            f"regime_table returns index is {type(returns.index).__name__}; expected DatetimeIndex"
        )
    if isinstance(panel, BarPanel):
        market = market_returns(panel)
    elif isinstance(panel, pd.Series):
        market = panel
    else:
        market = returns
    if vix is None and use_bundled_vix:
        vix = load_vix()
    labels = regime_labels(
        pd.DatetimeIndex(returns.index),
        market,
        vix,
        vol_window=vol_window,
        drawdown_threshold=drawdown_threshold,
        min_vix_coverage=min_vix_coverage,
        causal=causal,
        min_history=min_history,
    )
    n = len(returns)
    rows = [_regime_row("all", "all", returns, n, periods_per_year)]
    for kind, lab in labels.items():
        order = ("normal", "drawdown") if kind == "drawdown" else TERCILES
        for regime in order:
            part = returns[(lab == regime).fillna(False).to_numpy(bool)]
            rows.append(_regime_row(kind, regime, part, n, periods_per_year))
    return pd.DataFrame(rows)


def _cost_row(k: float, rets: pd.Series, periods_per_year: int) -> dict[str, float]:
    m = compute_metrics(rets, periods_per_year=periods_per_year)
    return {
        "cost_multiplier": float(k),
        "total_return": m["total_return"],
        "annual_return": m["annual_return"],
        "sharpe": m["sharpe"],
        "max_drawdown": m["max_drawdown"],
    }


def _scenarios(
    multipliers: Sequence[float], delays: Sequence[int], configured_delay: int
) -> list[tuple[float, int]]:
    """(cost multiplier, delay) pairs: every multiplier at the configured delay, then every
    delay at the configured costs (x1) that is not already a row."""
    rows: list[tuple[float, int]] = []
    for k in multipliers:
        if not k >= 0:
            raise BacktestError(f"cost multiplier = {k}; expected >= 0")
        rows.append((float(k), configured_delay))
    for d in delays:
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 0:
            raise BacktestError(f"cost_sensitivity delay = {d!r}; expected an integer >= 0 bars")
        if (1.0, int(d)) not in rows:
            rows.append((1.0, int(d)))
    return rows


def cost_sensitivity(
    panel: BarPanel,
    weights: FloatArray,
    sim_config: SimConfig,
    start: int = 0,
    end: int | None = None,
    multipliers: Sequence[float] = (0.0, 1.0, 2.0, 5.0),
    *,
    windows: Sequence[tuple[int, int]] | None = None,
    kernel: Kernel = "auto",
    delays: Sequence[int] = (0, 1, 2),
) -> pd.DataFrame:
    """Backtest the same target ``weights`` with all cost rates times ``k`` for each multiplier,
    then at the configured costs with the fills delayed by each of ``delays`` extra bars.

    Runs :func:`run_backtest` over ``[start, end)``, or over each ``(start, end)`` of ``windows``
    (e.g. :func:`~tradeforge.backtest.walkforward.fold_test_window` of every fold, each starting
    from fresh cash) with their returns stitched. One row per scenario: first every multiplier
    at the configured ``delay_bars``, then every delay at ``k = 1`` not already listed (a fill
    that comes later than modelled is behind many backtest-to-live gaps). Columns:
    ``cost_multiplier, delay_bars, total_return, annual_return, sharpe, max_drawdown,
    total_costs`` (cash: trading costs + borrow + margin), ``avg_turnover`` (fraction of equity
    traded per bar). Annualised with ``sim_config.periods_for(panel.frequency)``.
    """
    spans = (
        list(windows) if windows is not None else [(start, panel.n_bars if end is None else end)]
    )
    if not spans:
        raise BacktestError("cost_sensitivity windows is empty; expected at least one (start, end)")
    sim_config = sim_config.resolved_for(panel.frequency)
    ppy = sim_config.periods_for(panel.frequency)
    market = MarketArrays.for_config(panel, sim_config)
    rows = []
    for k, delay in _scenarios(multipliers, delays, sim_config.delay_bars):
        cfg = sim_config.model_copy(
            update={"costs": sim_config.costs.scaled(k), "delay_bars": delay}
        )
        results = [
            run_backtest(panel, weights, cfg, s, e, market=market, kernel=kernel) for s, e in spans
        ]
        rets = stitch([r.returns for r in results])
        row: dict[str, float] = _cost_row(k, rets, ppy)
        row["delay_bars"] = delay
        row["total_costs"] = float(
            sum(r.costs[list(CHARGE_COLUMNS)].to_numpy().sum() for r in results)
        )
        row["avg_turnover"] = float(pd.concat([r.turnover.iloc[1:] for r in results]).mean())
        rows.append(row)
    columns = ["cost_multiplier", "delay_bars", "total_return", "annual_return", "sharpe"]
    columns += ["max_drawdown", "total_costs", "avg_turnover"]
    return pd.DataFrame(rows, columns=columns)


def cost_sensitivity_from(
    run: Callable[[float], pd.Series | BacktestResult],
    multipliers: Sequence[float] = (0.0, 1.0, 2.0, 5.0),
    periods_per_year: int = 252,
) -> pd.DataFrame:
    """Headline metrics of ``run(k)`` (returns, or a BacktestResult, with cost rates times ``k``)
    for each ``k``: for callers that rebuild weights per cost level (e.g. re-rolling a policy)."""
    rows = []
    for k in multipliers:
        if not k >= 0:
            raise BacktestError(f"cost multiplier = {k}; expected >= 0")
        out = run(float(k))
        rets = out if isinstance(out, pd.Series) else getattr(out, "returns", None)
        if not isinstance(rets, pd.Series):
            raise BacktestError(
                f"cost_sensitivity run({k}) returned {type(out).__name__}; expected a returns Series"
            )
        rows.append(_cost_row(float(k), rets, periods_per_year))
    return pd.DataFrame(rows)


__all__ = [
    "TERCILES",
    "cost_sensitivity",
    "cost_sensitivity_from",
    "drawdown_regimes",
    "load_vix",
    "market_returns",
    "regime_labels",
    "regime_table",
    "vix_regimes",
    "volatility_regimes",
]
