"""``tradeforge features build CONFIG``: the feature panel of an experiment, as Parquet."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from tradeforge.cli._common import JSON_OPTION, OUT_OPTION, resolve_out
from tradeforge.cli.output import console, emit_json

features_app = typer.Typer(help="Build and inspect feature panels.", no_args_is_help=True)


@features_app.command("build")
def build(
    config: Path = typer.Argument(..., help="Experiment YAML (its data and features sections)."),
    out: Path | None = OUT_OPTION,
    fit_start: str | None = typer.Option(None, help="First bar of the scaler's fit window."),
    fit_end: str | None = typer.Option(
        None, help="Last bar of the scaler's fit window (default: the first fold's training end)."
    ),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="Recompute instead of reusing cached bars."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Compute the features for the config's data, fit the scaler, write Parquet and the pipeline."""
    from tradeforge.experiment.config import load_experiment
    from tradeforge.experiment.features import build_features

    cfg = load_experiment(config)
    out_dir = resolve_out(out, cfg.output_dir, f"{cfg.name}-features")
    summary = build_features(cfg, out_dir, fit_start, fit_end, use_cache=not no_cache)
    if as_json:
        emit_json(summary)
        return
    table = Table(title=f"{summary['n_features']} features x {summary['n_symbols']} symbols")
    for col in ("feature", "first valid", "NaN", "holes"):
        table.add_column(col)
    for name, info in summary["per_feature"].items():
        table.add_row(
            name, str(info["first_valid"])[:10], str(info["nan_count"]), str(info["n_holes"])
        )
    console.print(table)
    console.print(f"{summary['rows']} bars {summary['start'][:10]} .. {summary['end'][:10]}")
    fit_start, fit_end = summary["fit_window"]
    console.print(f"scaler fitted on {fit_start} .. {fit_end}; hash {summary['content_hash']}")
    if summary["cache"] is not None:
        console.print(
            f"computed {summary['computed_bars']} symbol-bars; the rest came from {summary['cache']}"
        )
    console.print(f"wrote {summary['path']}")


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")
