"""Training or tuning on one walk-forward fold's windows (``tradeforge train`` / ``tune``).

Both learn on the fold's training bars and score on its validation bars; the test bars are never
touched. The default fold is the most recent one (the policy one would deploy). A sweep on one
fold reports which other folds' test windows its validation window comes after, since parameters
chosen there must not be used to report those folds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeforge.backtest.walkforward import make_folds
from tradeforge.core.errors import ConfigError
from tradeforge.data.ingest import load_panel
from tradeforge.data.panel import BarPanel
from tradeforge.experiment import compose
from tradeforge.experiment.config import ExperimentConfig
from tradeforge.experiment.tuning import tuning_leaks


@dataclass(frozen=True)
class FoldTraining:
    """What a one-fold train or tune produced: its summary and any warnings for the user."""

    summary: dict[str, Any]
    fold: int
    warnings: list[str] = field(default_factory=list)


def fold_inputs(
    config: ExperimentConfig, fold_number: int = -1
) -> tuple[ExperimentConfig, BarPanel, compose.FoldInputs, list[Any]]:
    """(config resolved for the data, panel, the fold's fitted features, every fold)."""
    panel = load_panel(config.data)
    config = config.resolved_for(panel)
    folds = make_folds(panel.index, config.walkforward)
    if not -len(folds) <= fold_number < len(folds):
        raise ConfigError(
            f"fold = {fold_number}: the config has {len(folds)} folds (0..{len(folds) - 1})"
        )
    return config, panel, compose.fit_fold_features(config, panel, folds[fold_number]), folds


def _extra(config: ExperimentConfig) -> dict[str, Any]:
    return {
        "env": compose.run_env_config(config).model_dump(mode="json"),
        "data": config.data.model_dump(mode="json"),
    }


def train_fold(
    config: ExperimentConfig, out_dir: Path, fold_number: int = -1, progress: bool = False
) -> FoldTraining:
    """Train the config's agent on one fold; writes the policy artifact, metrics and curves."""
    from tradeforge.agents.training import train_agent

    config, panel, inputs, _ = fold_inputs(config, fold_number)
    agent = config.agent.with_updates(seed=config.seed + config.agent.seed)
    make_train, make_eval = compose.env_factories(config, panel, inputs, agent.seed)
    result = train_agent(
        agent, make_train, make_eval, out_dir, progress=progress,
        pipeline=inputs.pipeline, data_ranges=compose.data_ranges(panel, inputs.fold),
        extra_config=_extra(config), warm_start=compose.warm_start_hook(config, panel),
    )  # fmt: skip
    return FoldTraining(result.summary(), inputs.fold.number)


def tune_fold(
    config: ExperimentConfig,
    out_dir: Path,
    fold_number: int = -1,
    progress: bool = False,
    **changes: Any,
) -> FoldTraining:
    """Optuna sweep of the agent's hyperparameters, scored on the fold's validation bars only.

    ``changes`` override fields of the ``tune`` section (``n_trials``, ``n_jobs``). The result's
    warnings name every fold whose test window lies before this fold's validation window.
    """
    from tradeforge.agents.tuning import tune

    tune_cfg = config.tune_config(**changes)
    config, panel, inputs, folds = fold_inputs(config, fold_number)
    agent = config.agent.with_updates(seed=config.seed + config.agent.seed)
    make_train, make_eval = compose.env_factories(config, panel, inputs, agent.seed)
    result = tune(
        agent, tune_cfg, make_train, make_eval, out_dir, progress=progress,
        pipeline=inputs.pipeline, data_ranges=compose.data_ranges(panel, inputs.fold),
    )  # fmt: skip
    warnings = tuning_leaks(folds, inputs.fold, panel.index)
    summary = {**result.summary(), "fold": inputs.fold.number, "warnings": warnings}
    return FoldTraining(summary, inputs.fold.number, warnings)


__all__ = ["FoldTraining", "fold_inputs", "train_fold", "tune_fold"]
