"""``tradeforge evaluate SUITE``: experiment configs on every bundled market, one report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import TaskID
from rich.table import Table

from tradeforge.cli._common import JSON_OPTION, progress_bar
from tradeforge.cli._format import footnote, num
from tradeforge.cli.output import console, emit_json

SEEDS_OPTION = typer.Option(
    None, "--seeds", min=1, help="Run seeds 0..N-1 instead of the suite file's seeds."
)
SUITE_OUT_OPTION = typer.Option(
    None,
    "--out",
    help="Suite directory (default: <output_dir>/<name>); finished runs in it are not retrained.",
)


def evaluate(
    suite: Path = typer.Argument(..., help="Suite YAML (see configs/suite.yaml)."),
    out: Path | None = SUITE_OUT_OPTION,
    as_json: bool = JSON_OPTION,
    seeds: int | None = SEEDS_OPTION,
) -> None:
    """Run each experiment walk-forward on every market and seed of a suite (resuming finished
    runs), then write one report: agent against every baseline per market and fold, pooled
    Sharpe difference with a bootstrap interval, folds won, cost sensitivity."""
    from tradeforge.experiment.suite import load_suite, run_suite

    cfg = load_suite(suite, seeds=seeds)
    with progress_bar() as bar:
        tasks: dict[str, TaskID] = {}

        def tick(label: str, stage: str, done: int, total: int) -> None:
            key = "suite" if stage == "suite" else "fold" if stage == "fold" else None
            if key is None:
                return
            text = "suite runs" if key == "suite" else f"folds of {label}"
            if key not in tasks:
                tasks[key] = bar.add_task(text, total=total)
            bar.update(tasks[key], completed=done, total=total, description=escape(text))

        result = run_suite(cfg, out_dir=out, progress=tick)
    if as_json:
        emit_json(result.summary)
        return
    _print_summary(result.summary)


def _print_summary(summary: dict[str, Any]) -> None:
    cells: list[str] = []
    for experiment in dict.fromkeys(m["experiment"] for m in summary["markets"]):
        table = Table(title=f"{experiment}: agent Sharpe minus {summary['benchmark']}")
        for col in ("market", "folds", "years", "agent", "best of", "diff", "95% CI"):
            table.add_column(col, justify="left" if col == "market" else "right", no_wrap=True)
        for m in summary["markets"]:
            if m["experiment"] != experiment:
                continue
            row = [
                str(m["folds"]),
                num(m["test_years"], ".1f"),
                num(m["agent_sharpe"], ".2f"),
                num(m["sharpe_best_of"], ".2f"),
                num(m["sharpe_diff"], "+.2f"),
                f"{num(m['ci_low'], '+.2f')} .. {num(m['ci_high'], '+.2f')}",
            ]
            cells.extend(row)
            table.add_row(m["market"], *row)
        console.print(table)
    for line in summary["verdicts"]:
        console.print(escape(line))
    note = footnote(cells)
    if note:
        console.print(escape(note))
    console.print(
        f"runs: {summary['runs_trained']} trained, {summary['runs_resumed']} resumed; "
        f"report: {summary['report']}",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
