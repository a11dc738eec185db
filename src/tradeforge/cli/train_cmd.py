"""``tradeforge train CONFIG`` and ``tradeforge tune CONFIG`` on one walk-forward fold's windows.

Both use the fold's training bars to learn and its validation bars to score; the test bars are
never touched. The default fold is the most recent one (the policy one would deploy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from tradeforge.cli._common import (
    ALGO_OPTION,
    JSON_OPTION,
    OUT_OPTION,
    SEED_OPTION,
    TIMESTEPS_OPTION,
    overrides,
    resolve_out,
)
from tradeforge.cli.output import console, emit_json

FOLD_OPTION = typer.Option(-1, "--fold", help="Walk-forward fold whose windows to use (-1: last).")


def _fold_inputs(cfg: Any, fold_number: int) -> tuple[Any, Any]:
    from tradeforge.backtest.walkforward import make_folds
    from tradeforge.cli import compose
    from tradeforge.core.errors import ConfigError
    from tradeforge.data.ingest import load_panel

    panel = load_panel(cfg.data)
    folds = make_folds(panel.index, cfg.walkforward)
    if not -len(folds) <= fold_number < len(folds):
        raise ConfigError(
            f"--fold {fold_number}: the config has {len(folds)} folds (0..{len(folds) - 1})"
        )
    return panel, compose.fit_fold_features(cfg, panel, folds[fold_number])


def train(
    config: Path = typer.Argument(..., help="Experiment YAML (see configs/)."),
    fold: int = FOLD_OPTION,
    out: Path | None = OUT_OPTION,
    algo: str | None = ALGO_OPTION,
    timesteps: int | None = TIMESTEPS_OPTION,
    seed: int | None = SEED_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Train the config's agent on one fold; writes the policy artifact, metrics and curves."""
    from tradeforge.agents.training import train_agent
    from tradeforge.cli import compose
    from tradeforge.cli.experiment import load_experiment

    cfg = load_experiment(config, overrides(algo, timesteps, seed))
    panel, inputs = _fold_inputs(cfg, fold)
    run_dir = resolve_out(out, cfg.output_dir, f"{cfg.name}-train")
    agent = cfg.agent.with_updates(seed=cfg.seed + cfg.agent.seed)
    make_train, make_eval = compose.env_factories(cfg, panel, inputs, agent.seed)
    result = train_agent(
        agent, make_train, make_eval, run_dir, progress=not as_json,
        pipeline=inputs.pipeline, data_ranges=compose.data_ranges(panel, inputs.fold),
        extra_config={"env": cfg.env.model_dump(mode="json"), "data": cfg.data.model_dump(mode="json")},
        warm_start=compose.warm_start_hook(cfg, panel),
    )  # fmt: skip
    summary = result.summary()
    if as_json:
        emit_json(summary)
        return
    val = summary["validation"]
    console.print(f"trained {agent.algo} on fold {inputs.fold.number}: validation Sharpe "
                  f"{val.get('sharpe', float('nan')):.2f}")  # fmt: skip
    for name, spread in summary["spread"].items():
        if name == "sharpe" and len(summary["seeds"]) > 1:
            console.print(
                f"  over {len(summary['seeds'])} seeds: {spread['mean']:.2f} +/- {spread['std']:.2f}"
            )
    console.print(f"policy artifact: {summary['artifact']}")


def tune(
    config: Path = typer.Argument(..., help="Experiment YAML with an optional tune section."),
    fold: int = FOLD_OPTION,
    trials: int | None = typer.Option(None, "--trials", help="Override tune.n_trials."),
    jobs: int | None = typer.Option(None, "--jobs", help="Override tune.n_jobs (parallel trials)."),
    out: Path | None = OUT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Optuna sweep of the agent's hyperparameters, scored on the fold's validation bars only."""
    from tradeforge.agents.tuning import tune as run_tune
    from tradeforge.cli import compose
    from tradeforge.cli.experiment import load_experiment

    cfg = load_experiment(config)
    tune_cfg = cfg.tune_config(n_trials=trials, n_jobs=jobs)
    panel, inputs = _fold_inputs(cfg, fold)
    run_dir = resolve_out(out, cfg.output_dir, f"{cfg.name}-tune")
    agent = cfg.agent.with_updates(seed=cfg.seed + cfg.agent.seed)
    make_train, make_eval = compose.env_factories(cfg, panel, inputs, agent.seed)
    result = run_tune(
        agent, tune_cfg, make_train, make_eval, run_dir, progress=not as_json,
        pipeline=inputs.pipeline, data_ranges=compose.data_ranges(panel, inputs.fold),
    )  # fmt: skip
    summary = result.summary()
    if as_json:
        emit_json(summary)
        return
    console.print(
        f"best of {len(summary['trials'])} trials: {summary['metric']} = "
        f"{summary['best_score']:.3f} with {summary['best_params']}"
    )
    console.print(f"best policy artifact: {summary['best_artifact']}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("tune")(tune)
