"""``tradeforge pareto CONFIG``: a grid of reward weights, the out-of-sample Pareto front."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import TaskID
from rich.table import Table

from tradeforge.cli._common import JSON_OPTION, TIMESTEPS_OPTION, progress_bar
from tradeforge.cli._format import num
from tradeforge.cli.output import console, emit_json

GRID_OPTION = typer.Option(
    None,
    "--grid",
    help="A reward weight and its values, e.g. env.reward.drawdown=0,0.1 (repeat for more keys; "
    "default: drawdown x turnover penalty, 2 x 2).",
)
PARETO_OUT_OPTION = typer.Option(
    None, "--out", help="Output directory (default: <output_dir>/<name>-pareto)."
)
FOLDS_OPTION = typer.Option(None, "--folds", min=1, help="Override walkforward.n_folds.")


def pareto(
    config: Path = typer.Argument(..., help="Experiment YAML (e.g. configs/quickstart_tilt.yaml)."),
    grid: list[str] | None = GRID_OPTION,
    out: Path | None = PARETO_OUT_OPTION,
    timesteps: int | None = TIMESTEPS_OPTION,
    folds: int | None = FOLDS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Train CONFIG walk-forward once per combination of reward weights, then draw the
    out-of-sample Pareto front (annualised return against max drawdown, colour = turnover) with
    the baselines on the same plot (pareto.png, pareto.json)."""
    from tradeforge.experiment.pareto import parse_grid, run_pareto

    parsed = parse_grid(grid) if grid else None
    overrides = {"agent.timesteps": timesteps, "walkforward.n_folds": folds}
    with progress_bar() as bar:
        task: list[TaskID] = []

        def tick(label: str, done: int, total: int) -> None:
            if not task:
                task.append(bar.add_task("grid points", total=total))
            bar.update(task[0], completed=done, description=escape(f"grid point {label}"))

        result = run_pareto(config, parsed, out_dir=out, overrides=overrides, progress=tick)
    if as_json:
        emit_json(
            {
                "points": [asdict(p) for p in result.points],
                "baselines": [asdict(p) for p in result.baselines],
                "front": [p.label for p in result.front],
                "plot": str(result.plot),
                "json": str(result.json_path),
            }
        )
        return
    table = Table(title="out of sample, per grid point and baseline")
    for col in ("strategy", "annual return", "max drawdown", "Sharpe", "turnover/bar", "front"):
        table.add_column(col, justify="left" if col == "strategy" else "right", no_wrap=True)
    for p in [*result.points, *result.baselines]:
        table.add_row(
            escape(p.label),
            _pct(p.annual_return, "+.1f"),
            _pct(p.max_drawdown, ".1f"),
            num(p.sharpe, ".2f"),
            "" if p.turnover is None else num(p.turnover, ".3f"),
            "yes" if p.on_front else "",
        )
    console.print(table)
    console.print(f"plot: {result.plot}; table: {result.json_path}", soft_wrap=True)


def _pct(value: float, spec: str) -> str:
    text = num(100 * value, spec)
    return text if text == num(None, spec) else f"{text}%"


def register(app: typer.Typer) -> None:
    app.command("pareto")(pareto)
