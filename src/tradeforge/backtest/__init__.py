"""tradeforge.backtest: the vectorized engine, walk-forward, metrics, baselines, significance,
regimes and reports.

* engine: ``run_backtest(panel, weights, sim_config, start, end) -> BacktestResult``,
  ``run_baselines``, ``backtest_weights_file`` (user weights CSV).
* metrics and baselines: ``compute_metrics``, ``BASELINES``, ``baseline_weights``.
* walk-forward: ``WalkForwardConfig``, ``make_folds``, ``fold_test_window``,
  ``run_walk_forward``, ``stitch``, ``purged_kfold``.
* robustness: ``regime_table``, ``cost_sensitivity``, ``significance_table``,
  ``sharpe_inference`` (PSR/DSR), ``stationary_block_bootstrap_sharpe_diff``.
* report: ``ReportData`` and ``write_report(run_dir, data)``.
"""

from tradeforge.backtest.baselines import BASELINES, baseline_weights, frictionless_returns
from tradeforge.backtest.engine import (
    BacktestResult,
    backtest_weights_file,
    run_backtest,
    run_baselines,
)
from tradeforge.backtest.metrics import (
    compute_metrics,
    drawdown_series,
    equity_curve,
    rolling_sharpe,
)
from tradeforge.backtest.regimes import (
    cost_sensitivity,
    cost_sensitivity_from,
    load_vix,
    market_returns,
    regime_labels,
    regime_table,
)
from tradeforge.backtest.report import ReportData, write_report
from tradeforge.backtest.significance import (
    SharpeDiffTest,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    optimal_block_length,
    probabilistic_sharpe_ratio,
    psr_from_moments,
    sharpe_inference,
    significance_table,
    stationary_block_bootstrap_sharpe_diff,
)
from tradeforge.backtest.walkforward import (
    Fold,
    FoldResult,
    WalkForwardConfig,
    WalkForwardResult,
    fold_test_window,
    make_folds,
    purged_kfold,
    run_walk_forward,
    stitch,
)
from tradeforge.backtest.weights_file import WeightsFileConfig, load_weights_csv

__all__ = [
    "BASELINES",
    "BacktestResult",
    "Fold",
    "FoldResult",
    "ReportData",
    "SharpeDiffTest",
    "WalkForwardConfig",
    "WalkForwardResult",
    "WeightsFileConfig",
    "backtest_weights_file",
    "baseline_weights",
    "compute_metrics",
    "cost_sensitivity",
    "cost_sensitivity_from",
    "deflated_sharpe_ratio",
    "drawdown_series",
    "equity_curve",
    "expected_max_sharpe",
    "fold_test_window",
    "frictionless_returns",
    "load_vix",
    "load_weights_csv",
    "make_folds",
    "market_returns",
    "optimal_block_length",
    "probabilistic_sharpe_ratio",
    "psr_from_moments",
    "purged_kfold",
    "regime_labels",
    "regime_table",
    "rolling_sharpe",
    "run_backtest",
    "run_baselines",
    "run_walk_forward",
    "sharpe_inference",
    "significance_table",
    "stationary_block_bootstrap_sharpe_diff",
    "stitch",
    "write_report",
]
