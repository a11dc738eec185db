"""What a report with every optional input must contain: shared by the HTML and browser tests."""

FULL_SECTIONS = (
    "kpis",
    "notes",
    "equity",
    "metrics",
    "drawdown",
    "rolling_sharpe",
    "weights",
    "folds",
    "significance",
    "regimes",
    "cost_sensitivity",
    "seeds",
    "returns_hist",
    "config",
)
FULL_TABLES = (
    "metrics_summary",
    "metrics",
    "folds",
    "significance",
    "sharpe_inference",
    "regimes",
    "cost_sensitivity",
    "seeds",
)
FULL_PLOTS = ("equity", "drawdown", "rolling_sharpe", "weights", "cost_sensitivity", "returns_hist")
