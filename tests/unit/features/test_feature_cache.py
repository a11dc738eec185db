"""The materialized-feature cache: second calls compute nothing, extensions only the new bars."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tradeforge.core.errors import FeatureError
from tradeforge.data.panel import BarPanel
from tradeforge.features import FeatureCache, FeaturePipeline, FeatureSpec, default_feature_cache

NAMES = ["logret_1", "rsi_14", "macd_hist_12_26_9", "bb_width_20_2", "obv", "vol_20"]


@pytest.fixture
def pipe() -> FeaturePipeline:
    return FeaturePipeline(FeatureSpec.from_names(NAMES, scaler="none"))


def test_second_call_computes_nothing(
    tmp_path: Path, pipe: FeaturePipeline, equities_panel: BarPanel
) -> None:
    cache = FeatureCache(tmp_path)
    full = pipe.transform(equities_panel)
    first = cache.features(pipe, equities_panel, "2003-01-01", "2006-12-31")
    rows = first.index
    assert cache.last_computed == {
        s: int(np.searchsorted(equities_panel.index, rows[-1], "right"))
        for s in equities_panel.symbols
    }
    expect = full.values[equities_panel.index.get_indexer(rows)]
    np.testing.assert_array_equal(first.values, expect)

    second = cache.features(pipe, equities_panel, "2003-01-01", "2006-12-31")
    assert cache.computed_bars == 0
    np.testing.assert_array_equal(second.values, first.values)
    # a sub-range is also served from disk
    cache.features(pipe, equities_panel, "2004-01-01", "2004-12-31")
    assert cache.computed_bars == 0


def test_longer_range_computes_only_the_missing_bars(
    tmp_path: Path, pipe: FeaturePipeline, equities_panel: BarPanel
) -> None:
    cache = FeatureCache(tmp_path)
    cache.features(pipe, equities_panel, None, "2008-12-31")
    longer = cache.features(pipe, equities_panel, "2008-06-01", "2010-12-31")
    idx = equities_panel.index
    new_bars = int(((idx > "2008-12-31") & (idx <= "2010-12-31")).sum())
    assert cache.last_computed == dict.fromkeys(equities_panel.symbols, new_bars)
    full = pipe.transform(equities_panel).values[idx.get_indexer(longer.index)]
    np.testing.assert_allclose(longer.values, full, rtol=1e-13, atol=0, equal_nan=True)
    # everything is there now; a scaled read applies the pipeline's scaler to cached raw values
    scaled_pipe = FeaturePipeline(FeatureSpec.from_names(NAMES, scaler="zscore")).fit(
        equities_panel, None, "2005-12-31"
    )
    scaled = cache.features(scaled_pipe, equities_panel, None, "2010-12-31", scaled=True)
    assert cache.computed_bars == 0  # same columns -> same cache key whatever the scaler
    ref = scaled_pipe.transform(equities_panel).values[idx.get_indexer(scaled.index)]
    np.testing.assert_allclose(scaled.values, ref, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_changed_data_is_recomputed(
    tmp_path: Path, pipe: FeaturePipeline, equities_panel: BarPanel
) -> None:
    cache = FeatureCache(tmp_path)
    part = equities_panel.iloc(slice(0, 800))
    cache.features(pipe, part)
    close = part.close.copy()
    close[500, 0] *= 1.05  # a corrected AAPL close
    fixed = replace(part, close=close)
    out = cache.features(pipe, fixed)
    assert cache.last_computed == {"AAPL": 800, "IBM": 0, "MSFT": 0}
    np.testing.assert_array_equal(out.values, pipe.transform(fixed).values)


def test_staggered_symbols_and_default_location(
    tf_home: Path, pipe: FeaturePipeline, equities_panel: BarPanel
) -> None:
    close = equities_panel.close.copy()
    close[:300, 2] = np.nan  # MSFT starts later
    panel = replace(equities_panel.iloc(slice(0, 600)), close=close[:600])
    cache = default_feature_cache()
    assert cache.root == tf_home / "features"
    out = cache.features(pipe, panel)
    assert cache.last_computed["MSFT"] == 300
    np.testing.assert_array_equal(out.values, pipe.transform(panel).values)
    assert any((tf_home / "features").rglob("chunk_*.npz"))


def test_cross_sectional_features_are_refused(tmp_path: Path, equities_panel: BarPanel) -> None:
    xs = FeaturePipeline(FeatureSpec.from_names(["xrank_ret_5"], scaler="none"))
    with pytest.raises(FeatureError, match="cross-sectional indicators"):
        FeatureCache(tmp_path).features(xs, equities_panel)
