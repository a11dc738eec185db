"""Hyperparameter tuning that respects the walk-forward.

Nested tuning (``tune: {nested: true, ...}`` in the experiment) sweeps inside each fold on that
fold's own training and validation windows, so no fold's parameters are chosen on a window at or
after its test window. :func:`tuning_leaks` names the folds whose test window a one-fold sweep
(``tradeforge tune --fold K``) has already seen: their scores are no longer out of sample.

:func:`tune_fold_shared` runs a one-fold sweep with N worker processes on one Optuna study in
shared storage (``tradeforge tune CONFIG --storage URL --workers N``); more workers, on this or
other machines, may join the same study with :func:`run_tune_worker`.
"""

from __future__ import annotations

import logging
import multiprocessing
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tradeforge.agents.config import AgentConfig
from tradeforge.backtest.walkforward import Fold
from tradeforge.experiment.compose import FoldInputs
from tradeforge.experiment.config import ExperimentConfig

if TYPE_CHECKING:
    from tradeforge.experiment.single_fold import FoldTraining

logger = logging.getLogger(__name__)


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


def _fold_setup(
    config: ExperimentConfig, fold_number: int
) -> tuple[ExperimentConfig, Any, AgentConfig, FoldInputs, list[Fold]]:
    """(resolved config, panel, the seeded agent, the fold's inputs, every fold)."""
    from tradeforge.experiment.single_fold import fold_inputs

    config, panel, inputs, folds = fold_inputs(config, fold_number)
    agent = config.agent.with_updates(seed=config.seed + config.agent.seed)
    return config, panel, agent, inputs, folds


def run_tune_worker(
    config: ExperimentConfig, out_dir: Path, fold_number: int = -1, **changes: Any
) -> int:
    """One worker on the shared study of ``config``'s ``tune`` section (``changes`` override its
    fields; ``storage`` must be set): trains queued trials on the fold's training bars, scores
    them on its validation bars, until the study is done. Returns the trials it finished."""
    from tradeforge.agents.tuning import work_on_study
    from tradeforge.experiment import compose

    tune_cfg = config.tune_config(**changes)
    config, panel, agent, inputs, _ = _fold_setup(config, fold_number)
    make_train, make_eval = compose.env_factories(config, panel, inputs, agent.seed)
    return work_on_study(
        agent, tune_cfg, make_train, make_eval, Path(out_dir),
        pipeline=inputs.pipeline, data_ranges=compose.data_ranges(panel, inputs.fold),
    )  # fmt: skip


def start_tune_workers(
    config: ExperimentConfig, out_dir: Path, workers: int, fold_number: int = -1, **changes: Any
) -> list[BaseProcess]:
    """Queue the study's trials, then start ``workers`` processes of :func:`run_tune_worker`
    (spawned: no state shared with this process) and return them, started."""
    from tradeforge.agents.tuning import prepare_shared_study

    tune_cfg = config.tune_config(**changes)
    _, _, agent, _, _ = _fold_setup(config, fold_number)
    prepare_shared_study(agent, tune_cfg)
    context = multiprocessing.get_context("spawn")
    procs: list[BaseProcess] = [
        context.Process(
            target=run_tune_worker,
            args=(config, out_dir, fold_number),
            kwargs=changes,
            name=f"tune-worker-{k}",
        )
        for k in range(workers)
    ]
    for proc in procs:
        proc.start()
    return procs


def tune_fold_shared(
    config: ExperimentConfig,
    out_dir: Path,
    fold_number: int = -1,
    workers: int = 1,
    **changes: Any,
) -> FoldTraining:
    """The one-fold sweep of :func:`tradeforge.experiment.single_fold.tune_fold` on shared
    storage (``changes['storage']`` or ``tune.storage``) with ``workers`` worker processes (1:
    in this process). Starting it again on the same study resumes it: finished trials stay,
    trials of dead workers are failed and re-queued, only missing ones are queued."""
    from tradeforge.agents.tuning import prepare_shared_study, shared_study_result
    from tradeforge.core.errors import AgentError, ConfigError
    from tradeforge.experiment.single_fold import FoldTraining

    if workers < 1:
        raise ConfigError(f"workers = {workers}: expected at least 1 worker process")
    tune_cfg = config.tune_config(**changes)
    if tune_cfg.storage is None:
        raise ConfigError(
            "tune.storage = None: workers share the study through storage; expected an RDB URL "
            "(sqlite:///runs/optuna.db, postgresql://...) or a journal file path (--storage)"
        )
    if workers == 1:
        _, _, agent, _, _ = _fold_setup(config, fold_number)
        prepare_shared_study(agent, tune_cfg)
        run_tune_worker(config, out_dir, fold_number, **changes)
    else:
        procs = start_tune_workers(config, out_dir, workers, fold_number, **changes)
        for proc in procs:
            proc.join()
        failed = [f"{p.name} (exit {p.exitcode})" for p in procs if p.exitcode != 0]
        if failed:
            logger.warning("tuning workers failed: %s", ", ".join(failed))
    config, panel, agent, inputs, folds = _fold_setup(config, fold_number)
    try:
        result = shared_study_result(agent, tune_cfg, Path(out_dir))
    except AgentError as exc:
        if workers > 1:
            raise AgentError(f"{exc}; see the worker logs above") from exc
        raise
    warnings = tuning_leaks(folds, inputs.fold, panel.index)
    summary = {**result.summary(), "fold": inputs.fold.number, "warnings": warnings}
    summary["storage"], summary["study_name"] = tune_cfg.storage, tune_cfg.study_name
    return FoldTraining(summary, inputs.fold.number, warnings)


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


__all__ = [
    "TunedAgent",
    "run_tune_worker",
    "start_tune_workers",
    "tune_fold_shared",
    "tune_in_fold",
    "tuning_leaks",
]
