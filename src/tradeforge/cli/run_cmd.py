"""``tradeforge run CONFIG``: the main job (ingest, features, walk-forward, validation, report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import TaskID
from rich.table import Table

from tradeforge.cli._common import (
    ALGO_OPTION,
    JSON_OPTION,
    OUT_OPTION,
    SEED_OPTION,
    TIMESTEPS_OPTION,
    overrides,
    progress_bar,
    resolve_out,
)
from tradeforge.cli._format import footnote, num
from tradeforge.cli.output import console, emit_json

_LABELS = {
    "data": "loading data",
    "fold": "walk-forward folds",
    "validation": "baselines, significance, regimes, costs",
    "report": "writing report",
}


def run(
    config: Path = typer.Argument(..., help="Experiment YAML (see configs/)."),
    out: Path | None = OUT_OPTION,
    algo: str | None = ALGO_OPTION,
    timesteps: int | None = TIMESTEPS_OPTION,
    seed: int | None = SEED_OPTION,
    use_ray: bool = typer.Option(
        False,
        "--ray",
        help="Run folds x members x seeds as Ray tasks (local Ray on all cores by default).",
    ),
    fold_tasks_only: bool = typer.Option(
        False,
        "--fold-tasks-only",
        help="With Ray: one task per fold (its members and seeds train inside it); implies --ray.",
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        help="Join this Ray cluster (e.g. auto, ray://head:10001); implies --ray.",
    ),
    num_cpus: int | None = typer.Option(
        None, "--num-cpus", min=1, help="CPUs of the local Ray instance (default: all)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Ingest if needed, build features, train and test walk-forward, validate, write a report."""
    from tradeforge.experiment.compute import compute_config
    from tradeforge.experiment.config import load_experiment
    from tradeforge.experiment.run import run_experiment

    ray = use_ray or fold_tasks_only or address is not None or num_cpus is not None
    compute = compute_config(
        "ray" if ray else "serial", address, num_cpus, seed_tasks=not fold_tasks_only
    )
    cfg = load_experiment(config, overrides(algo, timesteps, seed))
    run_dir = resolve_out(out, cfg.output_dir, cfg.name)
    with progress_bar() as bar:
        tasks: dict[str, TaskID] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(_LABELS.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        summary = run_experiment(cfg, run_dir, tick, compute).summary
    if as_json:
        emit_json(summary)
        return
    _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title=f"out-of-sample {summary['oos_start'][:10]} .. {summary['oos_end'][:10]}")
    for col in ("strategy", "total return", "sharpe", "max drawdown"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    rows = {summary["strategy"]: summary["metrics"], **summary["baselines"]}
    cells: list[str] = []
    for name, m in rows.items():
        row = [
            num(m.get("total_return"), "+.1%"),
            num(m.get("sharpe"), ".2f"),
            num(m.get("max_drawdown"), ".1%"),
        ]
        cells.extend(row)
        table.add_row(name, *row)
    console.print(table)
    for row in summary["significance"]:
        parts = [num(row[k], f) for k, f in (("sharpe_diff", "+.2f"), ("ci_low", "+.2f"),
                                              ("ci_high", "+.2f"), ("p_value", ".3f"))]  # fmt: skip
        cells.extend(parts)
        console.print(
            escape(
                f"vs {row['baseline']}: Sharpe diff {parts[0]} (95% CI {parts[1]} .. {parts[2]}), "
                f"p = {parts[3]}"
            )
        )
    dsr = num(summary["metrics"].get("deflated_sharpe"), ".2f")
    cells.append(dsr)
    tried = summary.get("configurations_tried", 1)
    console.print(f"deflated Sharpe over {tried} configurations tried: {dsr}")
    note = footnote(cells)
    if note:
        console.print(escape(note))
    console.print(f"report: {summary['report']}")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
