"""One call on one OHLCV DataFrame: ``compute(frame, ["rsi_14", "macd_hist_12_26_9"])``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tradeforge.core.errors import FeatureError
from tradeforge.data.panel import OHLCV
from tradeforge.features.builder import Builder
from tradeforge.features.graph import Context
from tradeforge.features.registry import REGISTRY, build_indicator
from tradeforge.features.spec import parse_feature_name


def compute(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Unscaled features of one instrument, indexed like ``frame``, one column per name.

    ``frame`` has the columns the requested indicators read (``open, high, low, close,
    volume``, any case). Calendar features need a DatetimeIndex. The same kernels as the
    pipeline run here, so values match ``FeaturePipeline(spec with scaler "none")``.
    """
    specs = [parse_feature_name(n) for n in names]
    lower = {str(c).lower(): c for c in frame.columns}
    needed = sorted({f for s in specs for f in REGISTRY[s.name].fields} | {"close"})
    missing = [f for f in needed if f not in lower]
    if missing:
        raise FeatureError(
            f"frame is missing columns {missing} needed by {list(names)}; has {list(frame.columns)}"
        )
    fields = {
        f: frame[lower[f]].to_numpy(dtype=np.float64).reshape(-1, 1)
        for f in (*OHLCV, "news_score", "news_count")
        if f in lower
    }
    index: pd.DatetimeIndex | None = None
    if isinstance(frame.index, pd.DatetimeIndex):
        index = frame.index if frame.index.tz is not None else frame.index.tz_localize("UTC")
    b = Builder()
    outputs = [build_indicator(b, s.name, s.resolved_params()) for s in specs]
    values, _ = b.graph.run(Context.of(fields, index), outputs)
    columns = [s.column() for s in specs]
    return pd.DataFrame(
        {c: v[:, 0] for c, v in zip(columns, values, strict=True)}, index=frame.index
    )


__all__ = ["compute"]
