"""An experiment's feature panel, fitted and written as Parquet (``tradeforge features build``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tradeforge.backtest.walkforward import make_folds
from tradeforge.data.ingest import load_panel
from tradeforge.experiment.config import ExperimentConfig
from tradeforge.features.spec import FeatureSpec


def _cross_sectional(spec: FeatureSpec) -> bool:
    """Cross-sectional features depend on every symbol at once: they are not cached per symbol."""
    return any(ind.name == "xrank" for ind in spec.indicators)


def build_features(
    config: ExperimentConfig,
    out_dir: Path,
    fit_start: str | None = None,
    fit_end: str | None = None,
    use_cache: bool = True,
) -> dict[str, Any]:
    """Compute the features of the config's data, fit the scaler on ``[fit_start, fit_end]``
    (default: the first fold's training window), write ``features.parquet`` and the fitted
    pipeline into ``out_dir``; returns the feature summary with where things went."""
    from tradeforge.features.cache import default_feature_cache
    from tradeforge.features.pipeline import FeaturePipeline

    panel = load_panel(config.data)
    if fit_end is None:
        first = make_folds(panel.index, config.walkforward)[0]
        fit_start = fit_start or panel.index[first.train.start].isoformat()
        fit_end = panel.index[first.train.stop - 1].isoformat()
    pipe = FeaturePipeline(config.features).fit(panel, fit_start, fit_end)
    cache = default_feature_cache() if use_cache and not _cross_sectional(config.features) else None
    feats = pipe.transform(panel) if cache is None else cache.features(pipe, panel, scaled=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "features.parquet"
    feats.to_frame().to_parquet(path, index=False)
    pipe.save(out_dir / "pipeline")
    summary: dict[str, Any] = feats.summary()
    summary.update(
        computed_bars=cache.computed_bars if cache is not None else panel.n_bars * panel.n_symbols,
        cache=str(cache.root) if cache is not None else None,
        path=str(path), pipeline=str(out_dir / "pipeline"), content_hash=pipe.content_hash,
        fit_window=[fit_start, fit_end],
    )  # fmt: skip
    return summary


__all__ = ["build_features"]
