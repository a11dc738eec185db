"""The main job as a library call: data -> features -> walk-forward training and testing ->
validation -> report.

Each fold fits its own feature scaler and trains its own agent (or ensemble) on the fold's
training bars, chooses checkpoints on the validation bars (optionally after an Optuna sweep on
those same bars, see :mod:`tradeforge.experiment.tuning`) and trades the test bars once. The folds
run through the one fold loop, :func:`tradeforge.backtest.walkforward.run_walk_forward`. The
stitched test returns are compared with the baselines (traded fold by fold through the same engine,
costs and risk limits), tested for significance, cut by regime, re-run at other cost levels and
fill delays, and written to ``<run_dir>/report.html`` with ``metrics.json`` and PNG plots.

Example::

    from tradeforge.experiment import load_experiment, run_experiment

    result = run_experiment(load_experiment("configs/quickstart.yaml"))
    print(result.metrics["sharpe"], result.run_dir)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from tradeforge.agents.mapper import Mapper
from tradeforge.backtest.metrics import compute_metrics
from tradeforge.backtest.walkforward import Fold, make_folds, run_walk_forward
from tradeforge.core.errors import BacktestError
from tradeforge.data.ingest import load_panel
from tradeforge.data.panel import BarPanel
from tradeforge.experiment import compose
from tradeforge.experiment import report as run_report
from tradeforge.experiment.compute import ComputeConfig, fold_mapper, run_fold_tasks
from tradeforge.experiment.config import ExperimentConfig
from tradeforge.experiment.report import FoldOutcome
from tradeforge.experiment.validation import Validation, validate_run

logger = logging.getLogger(__name__)

# (stage, done, total) -> None; stages: "data", "fold", "validation", "report"
ProgressFn = Callable[[str, int, int], None]


def _noop(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_experiment` produced.

    ``returns`` and ``weights`` are the stitched out-of-sample per-bar returns and target weights;
    ``baselines`` each baseline's stitched returns over the same bars; ``costs`` the test
    decisions re-run at other cost multiples and fill delays; ``summary`` the JSON-ready
    summary also written to ``<run_dir>/summary.json``.
    """

    run_dir: Path
    metrics: dict[str, float]
    returns: pd.Series
    weights: pd.DataFrame
    baselines: dict[str, pd.Series]
    folds: list[FoldOutcome]
    costs: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None


def default_run_dir(config: ExperimentConfig) -> Path:
    """``<output_dir>/<name>-<UTC stamp>``: where a run goes when no directory is given."""
    return Path(config.output_dir) / f"{config.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def _train_fold(
    config: ExperimentConfig,
    panel: BarPanel,
    inputs: compose.FoldInputs,
    fold_dir: Path,
    previous: Path | None,
    mapper: Mapper | None = None,
) -> tuple[Any, dict[str, Any], Path]:
    """Train the fold's policy (single agent or ensemble); returns (policy, summary, artifact).
    ``mapper`` runs the members x seeds (serial by default; Ray tasks on a Ray run)."""
    from tradeforge.experiment.tuning import tune_in_fold

    fold = inputs.fold
    seed = config.seed + config.agent.seed + fold.number
    make_train, make_eval = compose.env_factories(config, panel, inputs, seed)
    env_config = compose.run_env_config(config)  # env.risk: the risk section's engine keys
    extra = {"env": env_config.model_dump(mode="json"), "data": config.data.model_dump(mode="json")}
    ranges = compose.data_ranges(panel, fold)
    agent = config.agent.with_updates(seed=seed)
    tuned = tune_in_fold(config, agent, inputs, make_train, make_eval, fold_dir, ranges)
    if tuned is not None:
        agent = tuned.agent
    warm = compose.warm_start_hook(config, panel, previous)
    ensemble = config.ensemble_config()
    if ensemble is not None:
        from tradeforge.agents.ensemble import train_ensemble

        result = train_ensemble(
            ensemble, make_train, make_eval, fold_dir, base_agent=agent, panel=panel,
            features=inputs.features, env_config=env_config,
            train_range=(fold.train.start, fold.train.stop), pipeline=inputs.pipeline,
            data_ranges=ranges, extra_config=extra, warm_start=warm, mapper=mapper,
        )  # fmt: skip
        if ensemble.online:  # re-score members on their recent paper returns through the test
            result.policy.bind_prices(panel.close)
        summary = result.summary()
        summary["seed_spread"] = {  # each member's validation Sharpe over its seeds
            name: trained.spread().get("sharpe", {})
            for name, trained in result.members.items()
            if trained is not None
        }
        summary["member_seeds"] = {  # every (member, seed) validation Sharpe: trials for the DSR
            name: [s["validation"].get("sharpe") for s in trained.summary()["seeds"]]
            for name, trained in result.members.items()
            if trained is not None
        }
        policy: Any = result.policy
        artifact = result.path
    else:
        from tradeforge.agents.policy import load_policy
        from tradeforge.agents.training import train_agent

        trained = train_agent(
            agent, make_train, make_eval, fold_dir,
            pipeline=inputs.pipeline, data_ranges=ranges, extra_config=extra, warm_start=warm,
            mapper=mapper,
        )  # fmt: skip
        policy = load_policy(
            trained.artifact_path, expected_feature_hash=inputs.pipeline.content_hash
        )
        summary, artifact = trained.summary(), trained.artifact_path
    if tuned is not None:
        summary["tuning"] = tuned.summary()
    return policy, summary, artifact


def _test_fold(
    config: ExperimentConfig, panel: BarPanel, inputs: compose.FoldInputs, trained: Any
) -> FoldOutcome:
    """Trade the fold's test bars once with the trained policy and backtest the decisions."""
    from tradeforge.agents.rollout import rollout_weights

    policy, summary, artifact = trained
    env = compose.make_test_env(config, panel, inputs)
    weights = rollout_weights(policy, env, seed=config.seed)
    if hasattr(env, "violations"):  # raw targets that broke the risk limits before projection
        summary = {**summary, "risk_violations": env.violations}
    risk = compose.run_env_config(config).risk  # the engine the test env traded under
    result = compose.backtest_fold(panel, weights, config.env.sim, inputs.fold, risk=risk)
    if result.risk is not None:  # what the risk engine did (docs/risk.md)
        summary = {**summary, "risk": result.risk.to_json()}
    costs = float(result.costs.drop(columns=["interest"], errors="ignore").to_numpy().sum())
    members = {str(k): float(v) for k, v in summary.get("weights", {}).items()}
    _save_reference_profile(inputs, weights, result.returns, Path(artifact))
    return FoldOutcome(inputs.fold, weights, result.returns, costs, summary, artifact, members)


def _save_reference_profile(
    inputs: compose.FoldInputs, weights: Any, returns: pd.Series, artifact: Path
) -> None:
    """Store the drift reference in the policy artifact: the training window's feature
    distribution, the test window's actions and out-of-sample returns (re-hashed manifest)."""
    from tradeforge.agents.artifact import write_manifest
    from tradeforge.monitor import build_reference_profile
    from tradeforge.monitor.calibration import MIN_RETURNS

    fold = inputs.fold
    oos: np.ndarray | None = returns.to_numpy(dtype=np.float64)
    finite = returns.to_numpy(dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size < MIN_RETURNS or not float(np.std(finite)) > 0.0:
        logger.warning(
            "fold %d: %d out-of-sample returns with spread %.3g: the drift profile gets no "
            "CUSUM calibration (a policy that stayed in cash has nothing to monitor)",
            fold.number, finite.size, float(np.std(finite)) if finite.size else 0.0,
        )  # fmt: skip
        oos = None
    build_reference_profile(
        inputs.features.values[fold.train.start : fold.train.stop],
        inputs.pipeline.names,
        actions=weights[fold.test.start : fold.test.stop],
        oos_returns=oos,
        metadata={"feature_hash": inputs.pipeline.content_hash, "fold": fold.number},
    ).save(artifact)
    write_manifest(artifact)


def _run_fold(
    config: ExperimentConfig,
    panel: BarPanel,
    run_dir: Path,
    mapper: Mapper,
    fold: Fold,
    previous: Path | None,
) -> FoldOutcome:
    """One fold end to end (features, training, test): the unit a compute backend runs; its
    members x seeds go through ``mapper``."""
    inputs = compose.fit_fold_features(config, panel, fold)
    fold_dir = run_dir / "folds" / f"fold_{fold.number}"
    trained = _train_fold(config, panel, inputs, fold_dir, previous, mapper)
    return _test_fold(config, panel, inputs, trained)


def _walk_forward(
    config: ExperimentConfig,
    panel: BarPanel,
    folds: list[Fold],
    run_dir: Path,
    tick: ProgressFn,
    compute: ComputeConfig | None = None,
) -> list[FoldOutcome]:
    """Every fold through the one fold loop; each fit sees the previous fold's artifact only
    when ``walkforward.warm_start`` is on. On Ray the folds run as tasks first, each fanning
    its members x seeds out as further tasks (same seeds, same numbers), and the loop collects
    their outcomes in order."""
    ready: dict[int, FoldOutcome] = {}
    tick("fold", 0, len(folds))
    mapper = fold_mapper(compute)
    if compute is not None and compute.backend == "ray":
        ran = run_fold_tasks(
            _run_fold, folds, (config, panel, run_dir, mapper), compute,
            warm_start=config.walkforward.warm_start, done=lambda k, n: tick("fold", k, n),
        )  # fmt: skip
        ready = {outcome.fold.number: outcome for outcome in ran}

    def fit(fold: Fold, previous: FoldOutcome | None) -> FoldOutcome:
        if fold.number in ready:
            return ready[fold.number]
        prev_artifact = previous.artifact if previous is not None else None
        return _run_fold(config, panel, run_dir, mapper, fold, prev_artifact)

    wf = run_walk_forward(
        folds, fit, lambda _fold, outcome: outcome, warm_start=config.walkforward.warm_start,
        progress=None if ready else (lambda done, total, _fold: tick("fold", done, total)),
        periods_per_year=config.periods_per_year(panel),
    )  # fmt: skip
    return [fr.output for fr in wf.folds]


def run_experiment(
    config: ExperimentConfig,
    out_dir: Path | None = None,
    progress: ProgressFn | None = None,
    compute: ComputeConfig | None = None,
) -> RunResult:
    """Run the whole job into ``out_dir`` (default :func:`default_run_dir`).

    Writes ``config.yaml``, ``folds/``, ``report.html`` with its plots, ``metrics.json``,
    ``summary.json``, ``oos_returns.csv`` and ``oos_weights.csv``; the same config and seed give
    the same numbers on the same machine. ``compute`` runs the folds as Ray tasks
    (:mod:`tradeforge.experiment.compute`); the numbers are the serial run's.
    """
    tick = progress or _noop
    run_dir = Path(out_dir) if out_dir is not None else default_run_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    tick("data", 0, 1)
    panel = load_panel(config.data)
    config = config.resolved_for(panel)  # the config.yaml below shows the values actually used
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
    )
    tick("data", 1, 1)
    folds = make_folds(panel.index, config.walkforward)
    outcomes = _walk_forward(config, panel, folds, run_dir, tick, compute)
    if config.report.importance:  # opt-in per-fold permutation importance (importance.json)
        from tradeforge.experiment.report_importance import write_importance

        write_importance(run_dir, [o.artifact for o in outcomes])

    tick("validation", 0, 1)
    checked = validate_run(config, panel, folds, outcomes)
    tick("validation", 1, 1)

    tick("report", 0, 1)
    html = run_report.write_run_report(config, panel, folds, outcomes, checked, run_dir)
    checked.returns.to_frame("returns").to_csv(run_dir / "oos_returns.csv")
    checked.weights.to_csv(run_dir / "oos_weights.csv")
    tick("report", 1, 1)
    summary = _summary(config, panel, folds, outcomes, checked, run_dir, html)
    return RunResult(
        run_dir=run_dir,
        metrics=checked.metrics,
        returns=checked.returns,
        weights=checked.weights,
        baselines=checked.baselines,
        folds=outcomes,
        costs=checked.costs,
        summary=summary,
        report=html,
    )


def _summary(
    config: ExperimentConfig,
    panel: BarPanel,
    folds: list[Fold],
    outcomes: list[FoldOutcome],
    checked: Validation,
    run_dir: Path,
    html: Path | None,
) -> dict[str, Any]:
    """The JSON-ready summary (also ``summary.json``); registers the policy when asked."""
    if checked.returns.empty:  # guarded by validate_run; keeps the indexing below safe
        raise BacktestError("the walk-forward produced no out-of-sample returns")
    ppy = checked.periods_per_year
    summary: dict[str, Any] = {
        "run_dir": str(run_dir),
        "report": str(html) if html else None,
        "strategy": config.strategy_name(),
        "symbols": list(panel.symbols),
        "bars": panel.n_bars,
        "folds": len(folds),
        "periods_per_year": ppy,
        "oos_start": checked.returns.index[0].isoformat(),
        "oos_end": checked.returns.index[-1].isoformat(),
        "metrics": checked.metrics,
        "configurations_tried": checked.n_trials,
        "trial_sharpes": [float(x) for x in checked.trial_sharpes],
        "baselines": {
            k: compute_metrics(v, periods_per_year=ppy) for k, v in checked.baselines.items()
        },
        "significance": checked.significance.to_dict(orient="records"),
        "artifacts": [str(o.artifact) for o in outcomes],
    }
    risk = run_report.risk_summary(outcomes)
    if risk is not None:  # what the risk engine did in the test windows
        summary["risk"] = risk
    if config.tracking is not None and config.tracking.register_policy:
        from tradeforge.experiment.tracking import register_run

        summary["registered"] = register_run(config, outcomes[-1].artifact, checked, run_dir)
    (run_dir / "summary.json").write_text(
        json.dumps(run_report.json_safe(summary), indent=2, default=str), encoding="utf-8"
    )
    return summary


__all__ = ["FoldOutcome", "ProgressFn", "RunResult", "default_run_dir", "run_experiment"]
