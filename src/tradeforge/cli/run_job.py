"""``tradeforge run``: data -> features -> walk-forward training and testing -> validation -> report.

Each fold fits its own feature scaler and trains its own agent (or ensemble) on the fold's
training bars, chooses checkpoints on the validation bars and trades the test bars once. The
stitched test returns are compared with the baselines (traded fold by fold through the same
engine and costs), tested for significance, cut by regime, re-run at other cost levels and
written to ``<run_dir>/report.html`` with ``metrics.json`` and PNG plots.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from tradeforge.backtest.baselines import baseline_weights
from tradeforge.backtest.metrics import compute_metrics
from tradeforge.backtest.regimes import cost_sensitivity, regime_table
from tradeforge.backtest.report import ReportData, write_report
from tradeforge.backtest.significance import sharpe_inference, significance_table
from tradeforge.backtest.walkforward import Fold, fold_test_window, make_folds, stitch
from tradeforge.cli import compose, run_report
from tradeforge.cli.experiment import ExperimentConfig
from tradeforge.cli.run_report import FoldOutcome
from tradeforge.core.errors import BacktestError
from tradeforge.core.types import FloatArray
from tradeforge.data.ingest import load_panel
from tradeforge.data.panel import BarPanel
from tradeforge.sim.config import SimConfig

logger = logging.getLogger(__name__)

# (stage, done, total) -> None; stages: "data", "features", "fold", "validation", "report"
ProgressFn = Callable[[str, int, int], None]


def _noop(stage: str, done: int, total: int) -> None:
    return None


def _train_fold(
    config: ExperimentConfig,
    panel: BarPanel,
    inputs: compose.FoldInputs,
    fold_dir: Path,
    previous: Path | None,
) -> tuple[Any, dict[str, Any], Path]:
    """Train the fold's policy (single agent or ensemble); returns (policy, summary, artifact)."""
    fold = inputs.fold
    seed = config.seed + config.agent.seed + fold.number
    make_train, make_eval = compose.env_factories(config, panel, inputs, seed)
    extra = {"env": config.env.model_dump(mode="json"), "data": config.data.model_dump(mode="json")}
    ranges = compose.data_ranges(panel, fold)
    ensemble = config.ensemble_config()
    agent = config.agent.with_updates(seed=seed)
    warm = compose.warm_start_hook(config, panel, previous)
    if ensemble is not None:
        from tradeforge.agents.ensemble import train_ensemble

        result = train_ensemble(
            ensemble, make_train, make_eval, fold_dir, base_agent=agent, panel=panel,
            features=inputs.features, env_config=config.env,
            train_range=(fold.train.start, fold.train.stop), pipeline=inputs.pipeline,
            data_ranges=ranges, extra_config=extra, warm_start=warm,
        )  # fmt: skip
        if ensemble.online:  # re-score members on their recent paper returns through the test
            result.policy.bind_prices(panel.close)
        summary = result.summary()
        summary["seed_spread"] = {  # each member's validation Sharpe over its seeds
            name: trained.spread().get("sharpe", {})
            for name, trained in result.members.items()
            if trained is not None
        }
        return result.policy, summary, result.path
    from tradeforge.agents.policy import load_policy
    from tradeforge.agents.training import train_agent

    trained = train_agent(
        agent, make_train, make_eval, fold_dir,
        pipeline=inputs.pipeline, data_ranges=ranges, extra_config=extra, warm_start=warm,
    )  # fmt: skip
    policy = load_policy(trained.artifact_path, expected_feature_hash=inputs.pipeline.content_hash)
    return policy, trained.summary(), trained.artifact_path


def _run_fold(
    config: ExperimentConfig, panel: BarPanel, fold: Fold, run_dir: Path, previous: Path | None
) -> FoldOutcome:
    from tradeforge.agents.rollout import rollout_weights

    inputs = compose.fit_fold_features(config, panel, fold)
    fold_dir = run_dir / "folds" / f"fold_{fold.number}"
    policy, summary, artifact = _train_fold(config, panel, inputs, fold_dir, previous)
    env = compose.make_test_env(config, panel, inputs)
    weights = rollout_weights(policy, env, seed=config.seed)
    if hasattr(env, "violations"):  # raw targets that broke the risk limits before projection
        summary = {**summary, "risk_violations": env.violations}
    result = compose.backtest_fold(panel, weights, config.env.sim, fold)
    costs = float(result.costs.drop(columns=["interest"], errors="ignore").to_numpy().sum())
    members = {str(k): float(v) for k, v in summary.get("weights", {}).items()}
    return FoldOutcome(
        fold, weights, compose.oos_returns(result), costs, summary, artifact, members
    )


def _baseline_returns(
    panel: BarPanel, folds: list[Fold], names: list[str], sim: SimConfig
) -> dict[str, pd.Series]:
    """Each baseline traded fold by fold (fitted on the fold's training window) and stitched."""
    out: dict[str, pd.Series] = {}
    for name in names:
        parts = []
        for fold in folds:
            w = baseline_weights(name, panel, fold.train.stop, start=fold.test.start)
            parts.append(compose.oos_returns(compose.backtest_fold(panel, w, sim, fold)))
        out[name] = stitch(parts)
    return out


def _cost_table(
    panel: BarPanel,
    weights: FloatArray,
    folds: list[Fold],
    sim: SimConfig,
    multipliers: list[float],
) -> pd.DataFrame:
    """The stitched test decisions re-run with every cost rate times k, fold by fold."""
    windows = [fold_test_window(f, panel.n_bars) for f in folds]
    return cost_sensitivity(panel, weights, sim, multipliers=multipliers, windows=windows)


def _trials(config: ExperimentConfig) -> int:
    members = len((config.ensemble or {}).get("members", [])) or 1
    return max(1, members * config.agent.seeds)


def run_experiment(
    config: ExperimentConfig, run_dir: Path, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Run the whole job into ``run_dir``; returns the JSON-ready summary (also ``summary.json``)."""
    tick = progress or _noop
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
    )
    tick("data", 0, 1)
    panel = load_panel(config.data)
    tick("data", 1, 1)
    folds = make_folds(panel.index, config.walkforward)
    outcomes: list[FoldOutcome] = []
    for i, fold in enumerate(folds):
        tick("fold", i, len(folds))
        previous = outcomes[-1].artifact if outcomes else None
        outcomes.append(_run_fold(config, panel, fold, run_dir, previous))
    tick("fold", len(folds), len(folds))

    tick("validation", 0, 1)
    sim = config.env.sim
    ppy = sim.periods_per_year
    strategy = stitch([o.returns for o in outcomes])
    if strategy.empty:
        raise BacktestError("the walk-forward produced no out-of-sample returns")
    baselines = _baseline_returns(panel, folds, config.report.baselines, sim)
    bench = baselines.get(config.report.benchmark)
    sig = significance_table(
        strategy, run_report.testable(baselines), n_boot=config.report.bootstrap_samples,
        seed=config.seed, periods_per_year=ppy,
    )  # fmt: skip
    try:
        inference: dict[str, float] | None = sharpe_inference(
            strategy, _trials(config), periods_per_year=ppy
        )
    except BacktestError:
        inference = None
    dsr = inference["dsr"] if inference else math.nan
    regimes = regime_table(strategy, panel, periods_per_year=ppy) if config.report.regimes else None
    full = compose.stitch_full_weights(
        panel.n_bars, panel.n_symbols, [o.weights for o in outcomes], folds
    )
    costs = _cost_table(panel, full, folds, sim, config.report.cost_multipliers)
    tick("validation", 1, 1)

    tick("report", 0, 1)
    metrics = compute_metrics(strategy, bench, periods_per_year=ppy)
    start = panel.index[folds[0].test.start]  # the first decision: every curve starts at 1 here
    metrics["deflated_sharpe"] = dsr
    weights = compose.oos_weights_frame(panel, full, folds)
    report = ReportData(
        strategy_returns=strategy,
        strategy_equity=run_report.equity_from(strategy, start),
        title=f"tradeforge: {config.name}",
        strategy_name="ensemble" if config.ensemble else config.agent.algo,
        baseline_equities={k: run_report.equity_from(v, start) for k, v in baselines.items()},
        benchmark_returns=bench,
        weights=weights,
        fold_table=run_report.fold_table(panel, outcomes, ppy),
        regime_table=regimes,
        significance_table=sig,
        cost_sensitivity=costs,
        metrics=metrics,
        seed_table=run_report.member_table(outcomes),
        sharpe_inference=inference,
        config=config.model_dump(mode="json"),
        notes=[
            v
            for v in [
                run_report.verdict(sig, config.report.benchmark),
                run_report.behaviour(weights),
            ]
            if v
        ]
        + run_report.notes(config, outcomes, dsr),
        periods_per_year=ppy,
    )
    html = write_report(run_dir, report) if config.report.html else None
    strategy.to_frame("returns").to_csv(run_dir / "oos_returns.csv")
    weights.to_csv(run_dir / "oos_weights.csv")
    tick("report", 1, 1)
    summary: dict[str, Any] = {
        "run_dir": str(run_dir),
        "report": str(html) if html else None,
        "strategy": "ensemble" if config.ensemble else config.agent.algo,
        "symbols": list(panel.symbols),
        "bars": panel.n_bars,
        "folds": len(folds),
        "oos_start": strategy.index[0].isoformat(),
        "oos_end": strategy.index[-1].isoformat(),
        "metrics": metrics,
        "baselines": {k: compute_metrics(v, periods_per_year=ppy) for k, v in baselines.items()},
        "significance": sig.to_dict(orient="records"),
        "artifacts": [str(o.artifact) for o in outcomes],
    }
    (run_dir / "summary.json").write_text(
        json.dumps(run_report.json_safe(summary), indent=2, default=str), encoding="utf-8"
    )
    return summary


__all__ = ["FoldOutcome", "ProgressFn", "run_experiment"]
