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
    as_json: bool = JSON_OPTION,
) -> None:
    """Ingest if needed, build features, train and test walk-forward, validate, write a report."""
    from tradeforge.experiment.config import load_experiment
    from tradeforge.experiment.run import run_experiment

    cfg = load_experiment(config, overrides(algo, timesteps, seed))
    run_dir = resolve_out(out, cfg.output_dir, cfg.name)
    with progress_bar() as bar:
        tasks: dict[str, TaskID] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(_LABELS.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        summary = run_experiment(cfg, run_dir, tick).summary
    if as_json:
        emit_json(summary)
        return
    _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title=f"out-of-sample {summary['oos_start'][:10]} .. {summary['oos_end'][:10]}")
    for col in ("strategy", "total return", "sharpe", "max drawdown"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    rows = {summary["strategy"]: summary["metrics"], **summary["baselines"]}
    for name, m in rows.items():
        table.add_row(
            name,
            _num(m.get("total_return"), "+.1%"),
            _num(m.get("sharpe"), ".2f"),
            _num(m.get("max_drawdown"), ".1%"),
        )
    console.print(table)
    for row in summary["significance"]:
        console.print(
            escape(
                f"vs {row['baseline']}: Sharpe diff {_num(row['sharpe_diff'], '+.2f')} "
                f"(95% CI {_num(row['ci_low'], '+.2f')} .. {_num(row['ci_high'], '+.2f')}), "
                f"p = {_num(row['p_value'], '.3f')}"
            )
        )
    if any(_undefined(m.get(k)) for m in rows.values() for k in ("sharpe", "total_return")):
        console.print("- : undefined (e.g. a Sharpe ratio of returns with no variation)")
    console.print(
        f"deflated Sharpe over {summary.get('configurations_tried', 1)} configurations tried: "
        + _num(summary["metrics"].get("deflated_sharpe"), ".2f")
    )
    console.print(f"report: {summary['report']}")


def _undefined(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _num(value: Any, spec: str) -> str:
    """``value`` formatted, or ``-`` when undefined (never ``nan`` in a table)."""
    return "-" if _undefined(value) else format(value, spec)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
