"""Hyperparameter tuning that respects the walk-forward.

Nested tuning (``tune: {nested: true, ...}`` in the experiment) sweeps inside each fold on that
fold's own training and validation windows, so no fold's parameters are chosen on a window at or
after its test window. :func:`tuning_leaks` names the folds whose test window a one-fold sweep
(``tradeforge tune --fold K``) has already seen: their scores are no longer out of sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tradeforge.agents.config import AgentConfig
from tradeforge.backtest.walkforward import Fold
from tradeforge.experiment.compose import FoldInputs
from tradeforge.experiment.config import ExperimentConfig


@dataclass(frozen=True)
class TunedAgent:
    """The fold's best agent config and the sweep that chose it."""

    agent: AgentConfig
    result: Any  # tradeforge.agents.tuning.TuneResult

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = self.result.summary()
        return out


def tune_in_fold(
    config: ExperimentConfig,
    agent: AgentConfig,
    inputs: FoldInputs,
    make_train: Any,
    make_eval: Any,
    fold_dir: Path,
    ranges: dict[str, Any],
) -> TunedAgent | None:
    """Sweep on the fold's own training/validation envs when ``tune.nested``; else None."""
    if config.tune is None:
        return None
    tune_cfg = config.tune_config()
    if not tune_cfg.nested:
        return None
    from tradeforge.agents.tuning import tune

    fold = inputs.fold
    tune_cfg = tune_cfg.model_copy(
        update={"study_name": f"{tune_cfg.study_name}-fold{fold.number}", "seed": agent.seed}
    )
    result = tune(
        agent, tune_cfg, make_train, make_eval, fold_dir / "tune",
        pipeline=inputs.pipeline, data_ranges=ranges,
    )  # fmt: skip
    best: AgentConfig = result.best_config
    return TunedAgent(best, result)


def tuning_leaks(folds: list[Fold], tuned: Fold, index: pd.DatetimeIndex) -> list[str]:
    """Warnings for every fold whose test window ends before ``tuned``'s validation window ends:
    parameters tuned on ``tuned`` have seen data after that fold's test, so its result would not be
    out of sample."""
    window = tuned.val if len(tuned.val) else tuned.train
    end = window.stop
    out = []
    for f in folds:
        if f.number != tuned.number and len(f.test) and f.test.start < end:
            out.append(
                f"tuning on fold {tuned.number} scores on bars up to {index[end - 1]:%Y-%m-%d}, "
                f"after fold {f.number}'s test window ({index[f.test.start]:%Y-%m-%d} .. "
                f"{index[f.test.stop - 1]:%Y-%m-%d}); parameters chosen here must not be used to "
                "report fold "
                f"{f.number}: use `tune: {{nested: true}}` in the experiment to tune inside each fold"
            )
    return out


__all__ = ["TunedAgent", "tune_in_fold", "tuning_leaks"]
