"""What a backtest report shows: :class:`ReportData`, filled by the caller (CLI, lead, notebooks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tradeforge.backtest.metrics import compute_metrics, equity_curve
from tradeforge.core.errors import BacktestError


@dataclass(frozen=True)
class ReportData:
    """Everything one HTML report needs; only ``strategy_returns`` is required.

    * ``strategy_returns``: out-of-sample per-bar returns (UTC DatetimeIndex).
    * ``strategy_equity``: equity curve; compounded from the returns (start 1.0) when None.
    * ``baseline_equities``: name -> equity curve (any start value; plotted rebased to 1), e.g.
      ``run_backtest(...).equity`` of each baseline; cut to the strategy's span for the plots
      and the metrics table.
    * ``benchmark_returns``: for alpha/beta/information ratio in the metrics table.
    * ``weights``: held or target weights per bar and symbol (heatmap).
    * ``fold_table``, ``regime_table``, ``significance_table``, ``cost_sensitivity``: DataFrames
      as produced by :mod:`tradeforge.backtest.walkforward`, :mod:`~.regimes` and
      :mod:`~.significance` (any columns are rendered).
    * ``sharpe_inference``: PSR/DSR figures from
      :func:`tradeforge.backtest.significance.sharpe_inference` (shown as KPI tiles and in the
      significance section).
    * ``seed_table``: one row per training seed or ensemble member (e.g. seed, sharpe,
      total_return), shown as "Seed variance" with a mean/std summary line.
    * ``extra_tables``: title -> DataFrame, rendered after the standard sections.
    * ``metrics``: headline metrics; computed with :func:`compute_metrics` when None.
    * ``config``: the run's configuration, echoed as JSON; ``notes``: warnings shown at the top
      (e.g. "results vary across seeds").
    """

    strategy_returns: pd.Series
    title: str = "tradeforge backtest report"
    strategy_name: str = "strategy"
    strategy_equity: pd.Series | None = None
    baseline_equities: dict[str, pd.Series] = field(default_factory=dict)
    benchmark_returns: pd.Series | None = None
    weights: pd.DataFrame | None = None
    fold_table: pd.DataFrame | None = None
    regime_table: pd.DataFrame | None = None
    significance_table: pd.DataFrame | None = None
    cost_sensitivity: pd.DataFrame | None = None
    sharpe_inference: dict[str, float] | None = None
    seed_table: pd.DataFrame | None = None
    extra_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    metrics: dict[str, float] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    periods_per_year: int = 252
    rolling_window: int = 126

    def __post_init__(self) -> None:
        if not isinstance(self.strategy_returns, pd.Series) or self.strategy_returns.empty:
            raise BacktestError("ReportData.strategy_returns must be a non-empty pandas Series")
        if self.strategy_returns.isna().all():
            raise BacktestError(
                "ReportData.strategy_returns has no non-NaN value; expected per-bar returns"
            )
        if not isinstance(self.strategy_returns.index, pd.DatetimeIndex):
            raise BacktestError(
                "ReportData.strategy_returns must have a DatetimeIndex, got "
                f"{type(self.strategy_returns.index).__name__}"
            )

        if self.periods_per_year <= 0 or self.rolling_window < 2:
            raise BacktestError(
                f"ReportData periods_per_year = {self.periods_per_year}, rolling_window = "
                f"{self.rolling_window}; expected > 0 and >= 2"
            )

    def equity(self) -> pd.Series:
        """The strategy's equity curve (given, or compounded from its returns)."""
        if self.strategy_equity is not None:
            return self.strategy_equity
        return equity_curve(self.strategy_returns)

    def headline_metrics(self) -> dict[str, float]:
        """Given metrics, else those of :func:`compute_metrics` on the strategy returns."""
        if self.metrics is not None:
            return dict(self.metrics)
        return compute_metrics(
            self.strategy_returns, self.benchmark_returns, periods_per_year=self.periods_per_year
        )

    def aligned_baselines(self) -> dict[str, pd.Series]:
        """Baseline equity curves cut to the strategy's out-of-sample span: from the last bar
        before its first return (the common starting point) to its last return."""
        rets = self.strategy_returns.dropna()
        first, last = rets.index[0], rets.index[-1]
        out: dict[str, pd.Series] = {}
        for name, eq in self.baseline_equities.items():
            eq = eq.dropna().sort_index()
            before = eq.index[eq.index < first]
            begin = before[-1] if len(before) else first
            out[name] = eq[(eq.index >= begin) & (eq.index <= last)]
        return out

    def baseline_metrics(self) -> dict[str, dict[str, float]]:
        """Metrics of each baseline over the strategy's span (see :meth:`aligned_baselines`)."""
        out = {}
        for name, eq in self.aligned_baselines().items():
            rets = eq.pct_change().dropna()
            if len(rets) > 1:
                out[name] = compute_metrics(rets, periods_per_year=self.periods_per_year)
        return out


__all__ = ["ReportData"]
