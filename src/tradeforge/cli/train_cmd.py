"""``tradeforge train CONFIG`` and ``tradeforge tune CONFIG``: wiring of
:mod:`tradeforge.experiment.single_fold` (one walk-forward fold's training and validation bars)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from tradeforge.cli._common import (
    ALGO_OPTION,
    JSON_OPTION,
    OUT_OPTION,
    SEED_OPTION,
    TIMESTEPS_OPTION,
    overrides,
    resolve_out,
)
from tradeforge.cli.output import console, emit_json, err_console

FOLD_OPTION = typer.Option(-1, "--fold", help="Walk-forward fold whose windows to use (-1: last).")


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
    from tradeforge.experiment.config import load_experiment
    from tradeforge.experiment.single_fold import train_fold

    cfg = load_experiment(config, overrides(algo, timesteps, seed))
    run_dir = resolve_out(out, cfg.output_dir, f"{cfg.name}-train")
    done = train_fold(cfg, run_dir, fold, progress=not as_json)
    summary = done.summary
    if as_json:
        emit_json(summary)
        return
    val = summary["validation"]
    console.print(f"trained {cfg.agent.algo} on fold {done.fold}: validation Sharpe "
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
    storage: str | None = typer.Option(
        None,
        "--storage",
        help="Shared Optuna storage: an RDB URL (sqlite:///f.db, postgresql://...) or a journal "
        "file path. Workers share the study tune.study_name; a rerun resumes it.",
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Worker processes on the shared study (needs a storage)."
    ),
    out: Path | None = OUT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Optuna sweep of the agent's hyperparameters, scored on the fold's validation bars only."""
    from tradeforge.experiment.config import load_experiment
    from tradeforge.experiment.single_fold import tune_fold
    from tradeforge.experiment.tuning import tune_fold_shared

    cfg = load_experiment(config)
    run_dir = resolve_out(out, cfg.output_dir, f"{cfg.name}-tune")
    if storage is not None or workers is not None:
        done = tune_fold_shared(
            cfg, run_dir, fold, workers or 1, storage=storage, n_trials=trials, n_jobs=jobs
        )
    else:
        done = tune_fold(cfg, run_dir, fold, progress=not as_json, n_trials=trials, n_jobs=jobs)
    for warning in done.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    summary = done.summary
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
