"""The feature store: indicator kernels, declarative specs, the fit/transform/update pipeline,
scalers, the materialized-feature cache and the optional news sentiment family.

Public API::

    spec = FeatureSpec.from_names(["rsi_14", "macd_hist_12_26_9"], scaler="robust")
    pipeline = FeaturePipeline(spec).fit(panel, start, end)   # scaler fitted on [start, end]
    features = pipeline.transform(panel)                      # FeaturePanel (T, N, F)
    row = pipeline.update(bar)                                # online, one bar
    compute(ohlcv_frame, ["rsi_14", "bb_upper_20_2"])         # unscaled, one instrument
"""

from tradeforge.features.cache import FeatureCache, default_feature_cache
from tradeforge.features.compute import compute
from tradeforge.features.macro import asof_values
from tradeforge.features.news import AlpacaNewsSource, NewsItem, NewsSource, PolygonNewsSource
from tradeforge.features.panel import FeaturePanel
from tradeforge.features.pipeline import FeaturePipeline, build_features, panel_bar
from tradeforge.features.registry import REGISTRY
from tradeforge.features.sentiment import LexiconScorer, aggregate_news, attach_news
from tradeforge.features.spec import FeatureSpec, IndicatorSpec, parse_feature_name


def available_indicators() -> dict[str, str]:
    """Registered indicator names and what each computes."""
    return {name: REGISTRY[name].description for name in sorted(REGISTRY)}


__all__ = [
    "REGISTRY",
    "AlpacaNewsSource",
    "FeatureCache",
    "FeaturePanel",
    "FeaturePipeline",
    "FeatureSpec",
    "IndicatorSpec",
    "LexiconScorer",
    "NewsItem",
    "NewsSource",
    "PolygonNewsSource",
    "aggregate_news",
    "asof_values",
    "attach_news",
    "available_indicators",
    "build_features",
    "compute",
    "default_feature_cache",
    "panel_bar",
    "parse_feature_name",
]
