"""``tradeforge features build CONFIG``: the feature panel of an experiment, as Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    from tradeforge.backtest.walkforward import make_folds
    from tradeforge.cli.experiment import load_experiment
    from tradeforge.data.ingest import load_panel
    from tradeforge.features.cache import default_feature_cache
    from tradeforge.features.pipeline import FeaturePipeline

    cfg = load_experiment(config)
    panel = load_panel(cfg.data)
    if fit_end is None:
        first = make_folds(panel.index, cfg.walkforward)[0]
        fit_start = fit_start or panel.index[first.train.start].isoformat()
        fit_end = panel.index[first.train.stop - 1].isoformat()
    pipe = FeaturePipeline(cfg.features).fit(panel, fit_start, fit_end)
    cache = None if no_cache or _cross_sectional(cfg.features) else default_feature_cache()
    feats = pipe.transform(panel) if cache is None else cache.features(pipe, panel, scaled=True)
    out_dir = resolve_out(out, cfg.output_dir, f"{cfg.name}-features")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "features.parquet"
    feats.to_frame().to_parquet(path, index=False)
    pipe.save(out_dir / "pipeline")
    summary = feats.summary()
    summary.update(
        computed_bars=cache.computed_bars if cache is not None else panel.n_bars * panel.n_symbols,
        cache=str(cache.root) if cache is not None else None,
        path=str(path), pipeline=str(out_dir / "pipeline"), content_hash=pipe.content_hash,
        fit_window=[fit_start, fit_end],
    )  # fmt: skip
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
    console.print(f"scaler fitted on {fit_start} .. {fit_end}; hash {pipe.content_hash}")
    if cache is not None:
        console.print(
            f"computed {summary['computed_bars']} symbol-bars; the rest came from {cache.root}"
        )
    console.print(f"wrote {path}")


def _cross_sectional(spec: Any) -> bool:
    """Cross-sectional features depend on every symbol at once: they are not cached per symbol."""
    return any(ind.name == "xrank" for ind in spec.indicators)


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")
