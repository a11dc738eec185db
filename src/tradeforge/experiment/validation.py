"""The validation half of a run: baselines, significance, deflated Sharpe, regimes, costs.

Baselines trade fold by fold through the same engine, costs and (when the experiment has a
``risk:`` section) the same risk-limit projection as the agent, so a comparison is never between
a constrained agent and an unconstrained rule. The deflated Sharpe counts every configuration
tried: tuning trials x ensemble members x seeds, with the dispersion of their validation Sharpes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from tradeforge.backtest.baselines import baseline_weights
from tradeforge.backtest.metrics import compute_metrics
from tradeforge.backtest.regimes import cost_sensitivity, regime_table
from tradeforge.backtest.significance import sharpe_inference, significance_table
from tradeforge.backtest.walkforward import Fold, fold_test_window, stitch
from tradeforge.core.errors import BacktestError
from tradeforge.core.types import FloatArray
from tradeforge.data.panel import BarPanel
from tradeforge.experiment import compose
from tradeforge.experiment.config import ExperimentConfig
from tradeforge.experiment.report import FoldOutcome, testable


@dataclass(frozen=True)
class Validation:
    """Everything the report and the summary show about the stitched out-of-sample result."""

    returns: pd.Series
    weights: pd.DataFrame
    full_weights: FloatArray
    baselines: dict[str, pd.Series]
    benchmark: pd.Series | None
    significance: pd.DataFrame
    inference: dict[str, float] | None
    regimes: pd.DataFrame | None
    costs: pd.DataFrame
    metrics: dict[str, float]
    n_trials: int
    trial_sharpes: list[float]
    periods_per_year: int


def limited_weights(config: ExperimentConfig, weights: FloatArray, start: int) -> FloatArray:
    """``weights`` projected row by row onto the experiment's risk limits from bar ``start`` on
    (unchanged when there is no ``risk:`` section)."""
    limits = config.risk_limits()
    if limits is None:
        return weights
    from tradeforge.risk import project_path

    out = weights.copy()
    out[start:] = project_path(weights[start:], limits)
    return out


def baseline_returns(
    config: ExperimentConfig, panel: BarPanel, folds: list[Fold]
) -> dict[str, pd.Series]:
    """Each baseline traded fold by fold (fitted on the fold's training window), within the
    experiment's risk limits, and stitched."""
    out: dict[str, pd.Series] = {}
    sim = config.env.sim
    for name in config.report.baselines:
        parts = []
        for fold in folds:
            w = baseline_weights(name, panel, fold.train.stop, start=fold.test.start)
            w = limited_weights(config, w, fold.test.start)
            parts.append(compose.backtest_fold(panel, w, sim, fold).returns)
        out[name] = stitch(parts)
    return out


def trial_sharpes(outcomes: list[FoldOutcome]) -> list[float]:
    """The validation Sharpe of every configuration tried, over all folds: each tuning trial,
    each ensemble member and each seed (the deflated Sharpe's trial set)."""
    found: list[float] = []
    for o in outcomes:
        tuning = o.trained.get("tuning", {})
        if tuning.get("metric") == "sharpe":  # other metrics only count through n_trials
            found.extend(trial.get("score") for trial in tuning.get("trials", []))
        if "member_seeds" in o.trained:
            for sharpes in o.trained["member_seeds"].values():
                found.extend(sharpes)
        else:
            found.extend(s.get("validation", {}).get("sharpe") for s in o.trained.get("seeds", []))
    return [float(x) for x in found if x is not None and math.isfinite(float(x))]


def configurations_tried(config: ExperimentConfig) -> int:
    """Configurations per fold: tuning trials x ensemble members x seeds (at least 1)."""
    members = len(config.ensemble_config().members) if config.ensemble is not None else 1
    trials = config.tune_config().n_trials if config.tune is not None else 1
    return max(1, trials * members * config.agent.seeds)


def validate_run(
    config: ExperimentConfig, panel: BarPanel, folds: list[Fold], outcomes: list[FoldOutcome]
) -> Validation:
    """Baselines, bootstrap significance, PSR/DSR, regimes and the cost/delay table."""
    sim = config.env.sim
    ppy = config.periods_per_year(panel)
    strategy = stitch([o.returns for o in outcomes])
    if strategy.empty:
        raise BacktestError("the walk-forward produced no out-of-sample returns")
    baselines = baseline_returns(config, panel, folds)
    bench = baselines.get(config.report.benchmark)
    sig = significance_table(
        strategy, testable(baselines), n_boot=config.report.bootstrap_samples,
        seed=config.seed, periods_per_year=ppy,
    )  # fmt: skip
    sharpes = trial_sharpes(outcomes)
    n_trials = configurations_tried(config)
    try:
        inference: dict[str, float] | None = sharpe_inference(
            strategy, n_trials, trial_sharpes=sharpes or None, periods_per_year=ppy
        )
    except BacktestError:
        inference = None
    regimes = regime_table(strategy, panel, periods_per_year=ppy) if config.report.regimes else None
    full = compose.stitch_full_weights(
        panel.n_bars, panel.n_symbols, [o.weights for o in outcomes], folds
    )
    windows = [fold_test_window(f, panel.n_bars) for f in folds]
    costs = cost_sensitivity(
        panel, full, sim, multipliers=config.report.cost_multipliers, windows=windows,
        delays=config.report.fill_delays,
    )  # fmt: skip
    metrics = compute_metrics(strategy, bench, periods_per_year=ppy)
    metrics["deflated_sharpe"] = inference["dsr"] if inference else math.nan
    return Validation(
        returns=strategy,
        weights=compose.oos_weights_frame(panel, full, folds),
        full_weights=full,
        baselines=baselines,
        benchmark=bench,
        significance=sig,
        inference=inference,
        regimes=regimes,
        costs=costs,
        metrics=metrics,
        n_trials=n_trials,
        trial_sharpes=sharpes,
        periods_per_year=ppy,
    )


__all__ = [
    "Validation",
    "baseline_returns",
    "configurations_tried",
    "limited_weights",
    "trial_sharpes",
    "validate_run",
]
